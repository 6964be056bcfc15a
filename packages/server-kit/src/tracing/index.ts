export { createTracing, tracingEnabled, tracingFromEnv, type SpanRecord, type Tracing, type TracingOptions } from "./tracing.js";
export { callerTrace, createTracingInterceptor } from "./tracing-interceptor.js";
export { formatTraceparent, isSampled, parseTraceparent, type TraceParent } from "./traceparent.js";
