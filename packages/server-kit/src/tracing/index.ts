export { createTracing, tracingEnabled, tracingFromEnv, type SpanRecord, type Tracing, type TracingOptions } from "./tracing.js";
export { callerTrace, createTracingInterceptor, rpcSpan } from "./tracing-interceptor.js";
export { formatTraceparent, isSampled, parseTraceparent, type TraceParent } from "./traceparent.js";
export { encodeTraceRequest } from "./otlp-encoding.js";
