// W3C Trace Context `traceparent` values, read and written without the OpenTelemetry SDK: a job's
// trace is stored and handed to runners whether or not this process exports spans.

/** A span to continue: lowercase hex ids and the trace flags (bit 0: sampled). */
export interface TraceParent {
  traceId: string;
  spanId: string;
  flags: number;
}

const header = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const zeroTrace = "0".repeat(32);
const zeroSpan = "0".repeat(16);

/**
 * The parent a `traceparent` header names, or undefined when it is absent or malformed (the
 * specification says to start a new trace then, not to fail the call). Version ff is invalid;
 * later versions are read by their first four fields.
 */
export function parseTraceparent(value: string | null | undefined): TraceParent | undefined {
  if (!value) return undefined;
  const m = header.exec(value.trim().toLowerCase());
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m;
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined;
  if (traceId === zeroTrace || spanId === zeroSpan) return undefined;
  return { traceId: traceId!, spanId: spanId!, flags: Number.parseInt(flags!, 16) };
}

export function formatTraceparent(p: TraceParent): string {
  return `00-${p.traceId}-${p.spanId}-${(p.flags & 0xff).toString(16).padStart(2, "0")}`;
}

export const isSampled = (flags: number): boolean => (flags & 1) === 1;
