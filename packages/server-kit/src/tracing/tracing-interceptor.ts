// RPC server spans: each unary call is a span, the child of the caller's `traceparent` when it
// sent one, active while the handler runs (so what it records joins the caller's trace). Streams
// get none: a span as long as a runner's connection says nothing. Only in the chain when tracing is on.
import { ConnectError, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { context, propagation, trace, ROOT_CONTEXT, SpanKind, SpanStatusCode, type TextMapGetter, type Tracer } from "@opentelemetry/api";
import { parseTraceparent, type TraceParent } from "./traceparent.js";

const headerGetter: TextMapGetter<Headers> = {
  get: (h, key) => h.get(key) ?? undefined,
  keys: (h) => [...h.keys()],
};

export function createTracingInterceptor(tracer: Tracer): Interceptor {
  return (next) => async (req) => {
    if (req.stream) return next(req);
    const parent = propagation.extract(ROOT_CONTEXT, req.header, headerGetter);
    const span = tracer.startSpan(
      `${req.service.typeName}/${req.method.name}`,
      { kind: SpanKind.SERVER, attributes: { "rpc.system": "grpc", "rpc.service": req.service.typeName, "rpc.method": req.method.name } },
      parent,
    );
    try {
      const res = await context.with(trace.setSpan(parent, span), () => next(req));
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

/**
 * The trace a call continues: the caller's `traceparent` header when it sent a valid one, else,
 * when tracing is on, the call's own server span (so what the call starts joins its trace), else
 * undefined.
 */
export function callerTrace(ctx: HandlerContext): TraceParent | undefined {
  const sent = parseTraceparent(ctx.requestHeader.get("traceparent"));
  if (sent) return sent;
  const active = trace.getSpan(context.active())?.spanContext();
  if (!active || !trace.isSpanContextValid(active)) return undefined;
  return { traceId: active.traceId, spanId: active.spanId, flags: active.traceFlags };
}
