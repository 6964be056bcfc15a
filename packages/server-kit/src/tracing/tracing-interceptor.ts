// RPC server spans: each unary call is a span, the child of the caller's `traceparent` when it
// sent one. The span travels in the call's context values (not an AsyncLocalStorage context: that
// would hook every promise of the process), so a handler reads it with `rpcSpan(ctx)` to join its
// trace. Streams get none: a span as long as a runner's connection says nothing. Only in the chain
// when tracing is on.
import { ConnectError, createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { propagation, trace, ROOT_CONTEXT, SpanKind, SpanStatusCode, type SpanContext, type TextMapGetter, type Tracer } from "@opentelemetry/api";
import { parseTraceparent, type TraceParent } from "./traceparent.js";

const headerGetter: TextMapGetter<Headers> = {
  get: (h, key) => h.get(key) ?? undefined,
  keys: (h) => [...h.keys()],
};

const rpcSpanKey = createContextKey<SpanContext | undefined>(undefined, { description: "the call's server span" });

export function createTracingInterceptor(tracer: Tracer): Interceptor {
  return (next) => async (req) => {
    if (req.stream) return next(req);
    const parent = propagation.extract(ROOT_CONTEXT, req.header, headerGetter);
    const span = tracer.startSpan(
      `${req.service.typeName}/${req.method.name}`,
      { kind: SpanKind.SERVER, attributes: { "rpc.system": "grpc", "rpc.service": req.service.typeName, "rpc.method": req.method.name } },
      parent,
    );
    req.contextValues.set(rpcSpanKey, span.spanContext());
    try {
      const res = await next(req);
      span.setAttribute("rpc.grpc.status_code", 0);
      return res;
    } catch (err) {
      const e = ConnectError.from(err);
      span.setAttribute("rpc.grpc.status_code", e.code);
      span.setStatus({ code: SpanStatusCode.ERROR, message: e.rawMessage });
      throw err;
    } finally {
      span.end();
    }
  };
}

/** The call's own server span, when tracing is on and the span is sampled into a valid trace. */
export function rpcSpan(ctx: HandlerContext): SpanContext | undefined {
  const span = ctx.values.get(rpcSpanKey);
  return span && trace.isSpanContextValid(span) ? span : undefined;
}

/**
 * The trace a call continues: the caller's `traceparent` header when it sent a valid one, else,
 * when tracing is on, the call's own server span (so what the call starts joins its trace), else
 * undefined.
 */
export function callerTrace(ctx: HandlerContext): TraceParent | undefined {
  const sent = parseTraceparent(ctx.requestHeader.get("traceparent"));
  if (sent) return sent;
  const active = rpcSpan(ctx);
  return active && { traceId: active.traceId, spanId: active.spanId, flags: active.traceFlags };
}
