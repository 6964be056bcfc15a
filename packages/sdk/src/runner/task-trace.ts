// A task attempt's span (job-service records it) as the parent of what task code traces itself:
// the attempt's W3C traceparent arrives with its envelope, and when the process has an
// OpenTelemetry tracer provider registered, task code runs inside that span's context.
import { context, isSpanContextValid, trace, ProxyTracerProvider, type Context } from "@opentelemetry/api";

const traceparentPattern = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})/;
/** The api's no-op provider: what a proxy answers while nothing is registered. */
const noopProvider = new ProxyTracerProvider().getDelegate();

/** Whether the process registered a tracer provider (else spans are no-ops and nothing is set up). */
export function tracingRegistered(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== noopProvider;
}

/** `base` with the attempt's span as the (remote) active span; undefined for an unusable traceparent. */
export function attemptContext(traceparent: string, base: Context = context.active()): Context | undefined {
  const m = traceparentPattern.exec(traceparent);
  if (!m || m[1] === "ff") return undefined;
  const spanContext = { traceId: m[2]!, spanId: m[3]!, traceFlags: Number.parseInt(m[4]!, 16), isRemote: true };
  return isSpanContextValid(spanContext) ? trace.setSpanContext(base, spanContext) : undefined;
}

/** Runs `fn` inside the attempt's span context when tracing is registered; else just runs it. */
export function runInAttemptSpan<T>(traceparent: string, fn: () => T): T {
  if (traceparent === "" || !tracingRegistered()) return fn();
  const ctx = attemptContext(traceparent);
  return ctx ? context.with(ctx, fn) : fn();
}
