// Our OTLP encoding of spans against the OpenTelemetry transformer's: the same spans, encoded by
// each, decode to the same fields (every field of the schema, not only those the receiver reads).
import { SpanKind, SpanStatusCode, TraceFlags, context, trace, type Link } from "@opentelemetry/api";
import { encodeTraceRequest } from "@corral/server-kit";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { describe, expect, it } from "vitest";
import { countSpans, decodeExportTraceServiceRequest } from "./otlp-receiver.js";

/** Which fields of each OTLP message are messages themselves (the rest are scalars, strings or bytes). */
const schema: Record<string, Record<number, string>> = {
  Request: { 1: "ResourceSpans" },
  ResourceSpans: { 1: "Resource", 2: "ScopeSpans" },
  Resource: { 1: "KeyValue" },
  ScopeSpans: { 1: "Scope", 2: "Span" },
  Scope: { 3: "KeyValue" },
  Span: { 9: "KeyValue", 11: "Event", 13: "Link", 15: "Status" },
  Event: { 3: "KeyValue" },
  Link: { 4: "KeyValue" },
  Status: {},
  KeyValue: { 2: "AnyValue" },
  AnyValue: { 5: "ArrayValue", 6: "KeyValueList" },
  ArrayValue: { 1: "AnyValue" },
  KeyValueList: { 1: "KeyValue" },
};

type Decoded = { [field: number]: unknown[] };

/** Every field of `bytes` as `type`, by number; proto3 defaults (0, "", empty) dropped outside AnyValue's oneof. */
function decode(bytes: Uint8Array, type: string): Decoded {
  const out: Decoded = {};
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    let value: unknown;
    if (wt === WireType.LengthDelimited) {
      const raw = r.bytes();
      const inner = schema[type]![no];
      value = inner ? decode(raw, inner) : Buffer.from(raw).toString("hex");
    } else if (wt === WireType.Varint) value = r.uint64().toString();
    else if (wt === WireType.Bit64) value = r.fixed64().toString();
    else if (wt === WireType.Bit32) value = r.fixed32();
    else throw new Error(`unexpected wire type ${wt}`);
    const isDefault = value === "0" || value === 0 || value === "" || (typeof value === "object" && Object.keys(value as object).length === 0);
    if (type !== "AnyValue" && isDefault && !(type in { ArrayValue: 1 })) continue;
    (out[no] ??= []).push(value);
  }
  return out;
}

function finishedSpans() {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": "job-service", "host.cores": 2, "process.argv": ["node", "main.ts"] }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer("corral", "0.1.0");
  const other = provider.getTracer("other");
  const parent = tracer.startSpan("parent", { kind: SpanKind.SERVER });
  const link: Link = { context: { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags: TraceFlags.SAMPLED }, attributes: { why: "batch" } };
  const child = tracer.startSpan(
    "child ünïcode ✓",
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        s: "text",
        empty: "",
        n: 42,
        zero: 0,
        big: 2 ** 40 + 3,
        negative: -7,
        ratio: 0.25,
        yes: true,
        no: false,
        list: ["a", "b"],
        numbers: [1, 2.5, -3],
        flags: [true, false],
        "emoji 🐑": "corral 🐎",
      },
      links: [link],
    },
    trace.setSpan(context.active(), parent),
  );
  child.addEvent("started", { "corral.node": "runner-1" });
  child.addEvent("bare");
  child.setStatus({ code: SpanStatusCode.ERROR, message: "boom: it failed" });
  child.end();
  parent.setStatus({ code: SpanStatusCode.OK });
  parent.end();
  other.startSpan("another scope", { kind: SpanKind.INTERNAL }).end();
  return exporter.getFinishedSpans();
}

describe("OTLP span encoding", () => {
  it("writes the same request as OpenTelemetry's transformer, field by field", () => {
    const spans = finishedSpans();
    const ours = encodeTraceRequest(spans);
    const theirs = ProtobufTraceSerializer.serializeRequest(spans)!;
    expect(decode(ours, "Request")).toEqual(decode(theirs, "Request"));
    expect(decodeExportTraceServiceRequest(ours)).toEqual(decodeExportTraceServiceRequest(theirs));
    expect(countSpans(ours)).toBe(3);
  });

  it("grows past its first guess and writes long lengths (a 100 KB attribute, 2,000 spans)", () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const tracer = provider.getTracer("corral");
    tracer.startSpan("big", { attributes: { text: "x".repeat(100_000), mixed: "é".repeat(70_000) } }).end();
    for (let i = 0; i < 2_000; i++) tracer.startSpan(`span ${i}`, { attributes: { i } }).end();
    const spans = exporter.getFinishedSpans();
    const ours = encodeTraceRequest(spans);
    expect(decode(ours, "Request")).toEqual(decode(ProtobufTraceSerializer.serializeRequest(spans)!, "Request"));
    expect(countSpans(ours)).toBe(2_001);
  });

  it("encodes no spans as an empty request", () => {
    expect(encodeTraceRequest([])).toHaveLength(0);
  });
});
