// The attempt's span as the parent of task code's spans: only when the process registered a
// tracer provider; a traceparent that breaks the W3C rules parents nothing.
import { context, ROOT_CONTEXT, trace } from "@opentelemetry/api";
import { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { afterEach, describe, expect, it } from "vitest";
import { attemptContext, runInAttemptSpan, tracingRegistered } from "./task-trace.js";

const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
const spanId = "00f067aa0ba902b7";

afterEach(() => {
  trace.disable();
  context.disable();
});

describe("task trace", () => {
  it("reads the attempt's span from its traceparent, and nothing from a broken one", () => {
    const ctx = attemptContext(`00-${traceId}-${spanId}-01`, ROOT_CONTEXT);
    expect(trace.getSpanContext(ctx!)).toEqual({ traceId, spanId, traceFlags: 1, isRemote: true });
    for (const bad of ["", "nonsense", `ff-${traceId}-${spanId}-01`, `00-${"0".repeat(32)}-${spanId}-01`]) expect(attemptContext(bad), bad).toBeUndefined();
  });

  it("runs task code as it is while no tracer provider is registered", () => {
    expect(tracingRegistered()).toBe(false);
    expect(runInAttemptSpan(`00-${traceId}-${spanId}-01`, () => trace.getActiveSpan())).toBeUndefined();
  });

  it("runs task code inside the attempt's span once a provider is registered", () => {
    trace.setGlobalTracerProvider(new BasicTracerProvider());
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    expect(tracingRegistered()).toBe(true);
    const child = runInAttemptSpan(`00-${traceId}-${spanId}-01`, () => {
      const span = trace.getTracer("test").startSpan("work");
      span.end();
      return span;
    });
    expect(child.spanContext().traceId).toBe(traceId);
    expect((child as unknown as { parentSpanContext?: { spanId: string } }).parentSpanContext?.spanId).toBe(spanId);
  });
});
