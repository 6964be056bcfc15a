// Spans as an OTLP ExportTraceServiceRequest in protobuf (opentelemetry/proto/collector/trace/v1),
// written in one pass into one growing buffer: a nested message reserves one byte for its length
// and moves its bytes up only when it turns out longer than 127; ASCII strings and hex ids are
// copied byte by byte without a call into the runtime. At two spans per task the OpenTelemetry
// transformer's two passes (sizes, then bytes) were most of what exporting cost job-service.
import type { Attributes, AttributeValue, HrTime } from "@opentelemetry/api";
import type { Resource } from "@opentelemetry/resources";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";

type Scope = ReadableSpan["instrumentationScope"];

/** One ExportTraceServiceRequest holding `spans`, grouped by resource and scope. */
export function encodeTraceRequest(spans: readonly ReadableSpan[]): Uint8Array {
  const w = new Writer(Math.max(1024, spans.length * 512));
  for (const group of groupSpans(spans)) {
    const resourceSpans = w.begin(1);
    const resource = w.begin(1);
    w.attributes(1, group.resource.attributes);
    w.end(resource);
    for (const { scope, spans: scoped } of group.scopes) {
      const scopeSpans = w.begin(2);
      const scopeAt = w.begin(1);
      w.string(1, scope.name);
      w.string(2, scope.version ?? "");
      w.end(scopeAt);
      for (const span of scoped) writeSpan(w, span);
      w.end(scopeSpans);
    }
    w.end(resourceSpans);
  }
  return w.bytes();
}

interface ResourceGroup {
  resource: Resource;
  scopes: { scope: Scope; spans: ReadableSpan[] }[];
}

function groupSpans(spans: readonly ReadableSpan[]): ResourceGroup[] {
  const groups: ResourceGroup[] = [];
  for (const span of spans) {
    let group = groups.find((g) => g.resource === span.resource);
    if (!group) groups.push((group = { resource: span.resource, scopes: [] }));
    const scope = span.instrumentationScope;
    let scoped = group.scopes.find((s) => s.scope.name === scope.name && s.scope.version === scope.version);
    if (!scoped) group.scopes.push((scoped = { scope, spans: [] }));
    scoped.spans.push(span);
  }
  return groups;
}

function writeSpan(w: Writer, span: ReadableSpan): void {
  const at = w.begin(2);
  const ctx = span.spanContext();
  w.id(1, ctx.traceId);
  w.id(2, ctx.spanId);
  w.string(3, ctx.traceState?.serialize() ?? "");
  w.id(4, span.parentSpanContext?.spanId);
  w.string(5, span.name);
  w.uint(6, span.kind + 1); // the API's INTERNAL (0) is OTLP's SPAN_KIND_INTERNAL (1), and so on
  w.time(7, span.startTime);
  w.time(8, span.endTime);
  w.attributes(9, span.attributes);
  w.uint(10, span.droppedAttributesCount);
  for (const e of span.events) {
    const event = w.begin(11);
    w.time(1, e.time);
    w.string(2, e.name);
    w.attributes(3, e.attributes);
    w.uint(4, e.droppedAttributesCount ?? 0);
    w.end(event);
  }
  w.uint(12, span.droppedEventsCount);
  for (const l of span.links) {
    const link = w.begin(13);
    w.id(1, l.context.traceId);
    w.id(2, l.context.spanId);
    w.attributes(4, l.attributes);
    w.uint(5, l.droppedAttributesCount ?? 0);
    w.fixed32(6, spanFlags(l.context.traceFlags, l.context.isRemote));
    w.end(link);
  }
  w.uint(14, span.droppedLinksCount);
  const status = w.begin(15);
  w.string(2, span.status.message ?? "");
  w.uint(3, span.status.code);
  w.end(status);
  w.fixed32(16, spanFlags(ctx.traceFlags, span.parentSpanContext?.isRemote));
  w.end(at);
}

/** OTLP's flags: the W3C trace flags, bit 8 saying bit 9 is set, bit 9 whether the parent (or linked) span is remote. */
const spanFlags = (traceFlags: number, remote: boolean | undefined) => (traceFlags & 0xff) | 0x100 | (remote ? 0x200 : 0);

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;
const TWO_32 = 2 ** 32;

/** hex digit (char code) → its value; -1 for anything else. */
const hexValue = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) hexValue["0123456789abcdef".charCodeAt(i)] = hexValue["0123456789ABCDEF".charCodeAt(i)] = i;

/** A protobuf writer for the few field kinds OTLP's trace messages use. */
class Writer {
  private buf: Buffer;
  private pos = 0;

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  /** Starts field `no` as a nested message; `end` with what it returns. */
  begin(no: number): number {
    this.tag(no, LEN);
    this.ensure(1);
    this.pos += 1;
    return this.pos;
  }

  end(start: number): void {
    const length = this.pos - start;
    if (length < 128) {
      this.buf[start - 1] = length;
      return;
    }
    const extra = varintSize(length) - 1;
    this.ensure(extra);
    this.buf.copyWithin(start + extra, start, this.pos);
    this.pos = start - 1;
    this.varint(length);
    this.pos = start + extra + length;
  }

  tag(no: number, wire: number): void {
    this.varint((no << 3) | wire);
  }

  /** A non-negative integer field, left out when 0 (proto3's default). */
  uint(no: number, n: number): void {
    if (n > 0) {
      this.tag(no, VARINT);
      this.varint(n);
    }
  }

  varint(n: number): void {
    this.ensure(10);
    const buf = this.buf;
    if (n < 0) {
      // A negative int64: ten bytes of its two's complement.
      let v = BigInt.asUintN(64, BigInt(n));
      for (let i = 0; i < 9; i++) {
        buf[this.pos++] = Number(v & 0x7fn) | 0x80;
        v >>= 7n;
      }
      buf[this.pos++] = Number(v);
      return;
    }
    while (n >= 128) {
      buf[this.pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    buf[this.pos++] = n;
  }

  fixed32(no: number, n: number): void {
    this.tag(no, I32);
    this.ensure(4);
    this.buf.writeUInt32LE(n >>> 0, this.pos);
    this.pos += 4;
  }

  /** An HrTime as fixed64 nanoseconds since the epoch, exact (past 2^53 without BigInt). */
  time(no: number, [seconds, nanos]: HrTime): void {
    this.tag(no, I64);
    this.ensure(8);
    // seconds * 1e9 + nanos, with seconds split into 16-bit halves so every product stays exact.
    const high = Math.floor(seconds / 65536) * 1e9;
    const low = (seconds % 65536) * 1e9 + nanos + (high % 65536) * 65536;
    this.buf.writeUInt32LE(low % TWO_32, this.pos);
    this.buf.writeUInt32LE(Math.floor(high / 65536) + Math.floor(low / TWO_32), this.pos + 4);
    this.pos += 8;
  }

  /** A string field, left out when empty. */
  string(no: number, s: string): void {
    if (s === "") return;
    this.tag(no, LEN);
    this.text(s);
  }

  /** A span or trace id (hex) as bytes, left out when absent. */
  id(no: number, hex: string | undefined): void {
    if (!hex) return;
    this.tag(no, LEN);
    const n = hex.length >> 1;
    this.varint(n);
    this.ensure(n);
    for (let i = 0; i < n; i++) {
      const hi = hexValue[hex.charCodeAt(2 * i)] ?? -1;
      const lo = hexValue[hex.charCodeAt(2 * i + 1)] ?? -1;
      if (hi < 0 || lo < 0) throw new Error(`span or trace id is not hex: ${JSON.stringify(hex)}`);
      this.buf[this.pos++] = (hi << 4) | lo;
    }
  }

  attributes(no: number, attributes: Attributes | undefined): void {
    if (!attributes) return;
    for (const key in attributes) {
      const value = attributes[key];
      if (value === undefined || value === null) continue;
      const kv = this.begin(no);
      this.string(1, key);
      const any = this.begin(2);
      this.anyValue(value);
      this.end(any);
      this.end(kv);
    }
  }

  private anyValue(value: AttributeValue | null | undefined): void {
    switch (typeof value) {
      case "string":
        this.tag(1, LEN);
        this.text(value);
        return;
      case "boolean":
        this.tag(2, VARINT);
        this.varint(value ? 1 : 0);
        return;
      case "number":
        if (Number.isInteger(value)) {
          this.tag(3, VARINT);
          this.varint(value);
        } else {
          this.tag(4, I64);
          this.ensure(8);
          this.buf.writeDoubleLE(value, this.pos);
          this.pos += 8;
        }
        return;
      case "object": {
        if (!Array.isArray(value)) return;
        const array = this.begin(5);
        for (const v of value) {
          const item = this.begin(1);
          this.anyValue(v);
          this.end(item);
        }
        this.end(array);
        return;
      }
      default:
        return;
    }
  }

  /** A length and the UTF-8 of `s`: ASCII copied here, anything else by the runtime. */
  private text(s: string): void {
    const start = this.pos;
    this.varint(s.length);
    this.ensure(s.length);
    const buf = this.buf;
    let pos = this.pos;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 128) {
        this.pos = start;
        const size = Buffer.byteLength(s);
        this.varint(size);
        this.ensure(size);
        this.pos += this.buf.write(s, this.pos, "utf8");
        return;
      }
      buf[pos++] = c;
    }
    this.pos = pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size += 1;
  }
  return size;
}
