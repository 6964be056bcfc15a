// A real OTLP/HTTP trace receiver for tests: an HTTP server taking POST /v1/traces with a protobuf
// ExportTraceServiceRequest (opentelemetry/proto/collector/trace/v1), decoded field by field with
// protobuf-es's wire reader, and kept as plain spans.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

export type AttributeValue = string | boolean | number | bigint | AttributeValue[] | undefined;

export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, AttributeValue>;
  events: { name: string; timeNs: bigint; attributes: Record<string, AttributeValue> }[];
  links: { traceId: string; spanId: string }[];
  /** 0 unset, 1 ok, 2 error. */
  status: { code: number; message: string };
}

export interface OtlpReceiver {
  /** The OTEL_EXPORTER_OTLP_ENDPOINT to give exporters. */
  endpoint: string;
  /** Every span received, decoded (none when started with `keep: false`). */
  spans: ReceivedSpan[];
  /** How many spans arrived. */
  count: number;
  /** Export requests that were not protobuf on /v1/traces. */
  refused: number;
  close(): Promise<void>;
}

/**
 * `keep: false` only counts the spans of each request (its structure read, the spans skipped), as
 * a collector on another machine would cost the exporting process nothing more: the bench's choice.
 */
export async function startOtlpReceiver(options: { keep?: boolean } = {}): Promise<OtlpReceiver> {
  const keep = options.keep ?? true;
  const receiver: OtlpReceiver = { endpoint: "", spans: [], count: 0, refused: 0, close: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/v1/traces" || req.headers["content-type"] !== "application/x-protobuf") {
        receiver.refused += 1;
        res.writeHead(415).end();
        return;
      }
      try {
        const body = new Uint8Array(Buffer.concat(chunks));
        if (keep) {
          const spans = decodeExportTraceServiceRequest(body);
          receiver.spans.push(...spans);
          receiver.count += spans.length;
        } else {
          receiver.count += countSpans(body);
        }
      } catch {
        receiver.refused += 1;
        res.writeHead(400).end();
        return;
      }
      // An empty ExportTraceServiceResponse.
      res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  receiver.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  receiver.close = () => new Promise((resolve) => server.close(() => resolve()));
  return receiver;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** Calls `onField` for each field of the message in `bytes`; unknown fields are skipped. */
function fields(bytes: Uint8Array, onField: (no: number, r: BinaryReader, wt: WireType) => boolean): void {
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (!onField(no, r, wt)) r.skip(wt, no);
  }
}

export function decodeExportTraceServiceRequest(bytes: Uint8Array): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  fields(bytes, (no, r) => {
    if (no !== 1) return false;
    // ResourceSpans: resource = 1, scope_spans = 2.
    let service = "";
    const spans: ReceivedSpan[] = [];
    fields(r.bytes(), (rno, rr) => {
      if (rno === 1) {
        fields(rr.bytes(), (ano, ar) => {
          if (ano !== 1) return false;
          const [k, v] = keyValue(ar.bytes());
          if (k === "service.name") service = String(v);
          return true;
        });
        return true;
      }
      if (rno === 2) {
        fields(rr.bytes(), (sno, sr) => {
          if (sno !== 2) return false;
          spans.push(span(sr.bytes()));
          return true;
        });
        return true;
      }
      return false;
    });
    for (const s of spans) out.push({ ...s, service });
    return true;
  });
  return out;
}

/** The number of spans in an ExportTraceServiceRequest, none of them decoded. */
export function countSpans(bytes: Uint8Array): number {
  let n = 0;
  // ResourceSpans (1) > ScopeSpans (2) > Span (2); a span is counted and skipped.
  fields(bytes, (no, r) => {
    if (no !== 1) return false;
    fields(r.bytes(), (rno, rr) => {
      if (rno !== 2) return false;
      fields(rr.bytes(), (sno) => {
        if (sno === 2) n += 1;
        return false;
      });
      return true;
    });
    return true;
  });
  return n;
}

function span(bytes: Uint8Array): ReceivedSpan {
  const s: ReceivedSpan = {
    service: "",
    traceId: "",
    spanId: "",
    parentSpanId: "",
    name: "",
    kind: 0,
    startNs: 0n,
    endNs: 0n,
    attributes: {},
    events: [],
    links: [],
    status: { code: 0, message: "" },
  };
  fields(bytes, (no, r) => {
    switch (no) {
      case 1:
        s.traceId = hex(r.bytes());
        return true;
      case 2:
        s.spanId = hex(r.bytes());
        return true;
      case 4:
        s.parentSpanId = hex(r.bytes());
        return true;
      case 5:
        s.name = r.string();
        return true;
      case 6:
        s.kind = r.int32();
        return true;
      case 7:
        s.startNs = BigInt(r.fixed64());
        return true;
      case 8:
        s.endNs = BigInt(r.fixed64());
        return true;
      case 9: {
        const [k, v] = keyValue(r.bytes());
        s.attributes[k] = v;
        return true;
      }
      case 11: {
        const e = { name: "", timeNs: 0n, attributes: {} as Record<string, AttributeValue> };
        fields(r.bytes(), (eno, er) => {
          if (eno === 1) e.timeNs = BigInt(er.fixed64());
          else if (eno === 2) e.name = er.string();
          else if (eno === 3) {
            const [k, v] = keyValue(er.bytes());
            e.attributes[k] = v;
          } else return false;
          return true;
        });
        s.events.push(e);
        return true;
      }
      case 13: {
        const l = { traceId: "", spanId: "" };
        fields(r.bytes(), (lno, lr) => {
          if (lno === 1) l.traceId = hex(lr.bytes());
          else if (lno === 2) l.spanId = hex(lr.bytes());
          else return false;
          return true;
        });
        s.links.push(l);
        return true;
      }
      case 15:
        fields(r.bytes(), (tno, tr) => {
          if (tno === 2) s.status.message = tr.string();
          else if (tno === 3) s.status.code = tr.int32();
          else return false;
          return true;
        });
        return true;
      default:
        return false;
    }
  });
  return s;
}

function keyValue(bytes: Uint8Array): [string, AttributeValue] {
  let key = "";
  let value: AttributeValue;
  fields(bytes, (no, r) => {
    if (no === 1) key = r.string();
    else if (no === 2) value = anyValue(r.bytes());
    else return false;
    return true;
  });
  return [key, value];
}

function anyValue(bytes: Uint8Array): AttributeValue {
  let value: AttributeValue;
  fields(bytes, (no, r) => {
    switch (no) {
      case 1:
        value = r.string();
        return true;
      case 2:
        value = r.bool();
        return true;
      case 3: {
        const n = BigInt(r.int64());
        value = n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
        return true;
      }
      case 4:
        value = r.double();
        return true;
      case 5: {
        const items: AttributeValue[] = [];
        fields(r.bytes(), (ano, ar) => {
          if (ano !== 1) return false;
          items.push(anyValue(ar.bytes()));
          return true;
        });
        value = items;
        return true;
      }
      default:
        return false;
    }
  });
  return value;
}
