// A streaming call of the stream fast path: its handler context and its invocation through the
// interceptor chain, doing what connect-es' createHandlerContext and transformInvokeImplementation
// do with fewer objects held for as long as the stream is open (an idle runner's Work stream is
// open for days). One AbortController instead of a deadline controller and a linked one, the
// deadline timer only when the client set one, one context object that is also the handler's
// (connect-es copies it per call), and the handler's answers read directly, without the
// downlevelled async generator, delegator and normalising wrapper connect-es puts around them.
import { create, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type StreamRequest,
  type StreamResponse,
} from "@connectrpc/connect";
import { createAsyncIterable } from "@connectrpc/connect/protocol";

export interface StreamCallInit {
  spec: MethodImplSpec;
  url: string;
  timeoutMs: number | undefined;
  requestHeader: Headers;
  values: ContextValues;
}

/** The call's handler context; `abort` ends its signal (the client left, or the call ended). */
export class StreamCall implements HandlerContext {
  readonly spec: MethodImplSpec;
  readonly url: string;
  readonly requestHeader: Headers;
  readonly responseHeader = new Headers({ "content-type": "application/grpc+proto" });
  readonly responseTrailer = new Headers({ "grpc-status": "0" });
  readonly values: ContextValues;
  readonly #controller = new AbortController();
  readonly #deadline: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The request's close listener: the client went away. */
  readonly clientLeft: () => void;

  constructor(init: StreamCallInit) {
    // Assigned here, not as a named class field: see keepNames in envelope-reader.ts.
    this.clientLeft = () => this.abort(new ConnectError("the client canceled the call", Code.Canceled));
    this.spec = init.spec;
    this.url = init.url;
    this.requestHeader = init.requestHeader;
    this.values = init.values;
    if (init.timeoutMs !== undefined) {
      this.#deadline = Date.now() + init.timeoutMs;
      // connect-es' deadline signal: the same reason, at once when the time is already up.
      if (init.timeoutMs <= 0) this.#timedOut();
      else this.#timer = setTimeout(() => this.#timedOut(), init.timeoutMs);
    }
  }

  get method(): DescMethod {
    return this.spec.method;
  }

  get service(): DescService {
    return this.spec.method.parent;
  }

  get requestMethod(): string {
    return "POST";
  }

  get protocolName(): string {
    return "grpc";
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  timeoutMs(): number | undefined {
    return this.#deadline === undefined ? undefined : this.#deadline - Date.now();
  }

  abort(reason?: unknown): void {
    clearTimeout(this.#timer);
    if (!this.#controller.signal.aborted) this.#controller.abort(reason);
  }

  #timedOut(): void {
    this.#controller.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
  }
}

/**
 * Runs the interceptors and the handler for `input`; answers the handler's (normalised) messages,
 * with the interceptors' response headers copied to the call's, as connect-es does.
 */
export async function invokeStream(call: StreamCall, input: AsyncIterable<unknown>, interceptors: Interceptor[]): Promise<StreamResponse> {
  const spec = call.spec;
  let next = handlerOf(call);
  for (let i = interceptors.length - 1; i >= 0; i--) next = interceptors[i]!(next as never) as typeof next;
  const res = await next({
    stream: true,
    message: input as AsyncIterable<never>,
    method: spec.method,
    requestMethod: "POST",
    url: call.url,
    signal: call.signal,
    header: call.requestHeader,
    service: spec.method.parent,
    contextValues: call.values,
  } as StreamRequest);
  copyHeaders(res.header, call.responseHeader);
  return res;
}

/** The innermost `next` (anonymous: see keepNames in envelope-reader.ts; the chain keeps it for the call). */
function handlerOf(call: StreamCall): (req: StreamRequest) => Promise<StreamResponse> {
  return (req) => handle(call, req);
}

/** The handler's own part of the chain (connect-es' `anyFn` for each streaming kind). */
async function handle(call: StreamCall, req: StreamRequest): Promise<StreamResponse> {
  const spec = call.spec;
  const ctx = handlerContext(call, req);
  let message: AsyncIterable<unknown>;
  switch (spec.kind) {
    case "bidi_streaming":
      message = spec.impl(req.message as AsyncIterable<never>, ctx);
      break;
    case "server_streaming":
      message = spec.impl(await ensureSingle(req.message, "server-streaming"), ctx);
      break;
    case "client_streaming":
      message = createAsyncIterable([create(spec.method.output, await spec.impl(req.message as AsyncIterable<never>, ctx))]);
      break;
    default:
      throw new ConnectError(`${spec.method.name} is not a streaming method`, Code.Internal);
  }
  return {
    stream: true,
    message: message as AsyncIterable<never>,
    method: spec.method,
    service: spec.method.parent,
    header: call.responseHeader,
    trailer: call.responseTrailer,
  } as StreamResponse;
}

/** The call itself, unless an interceptor gave the handler other headers, signal or values. */
function handlerContext(call: StreamCall, req: StreamRequest): HandlerContext {
  if (req.header === call.requestHeader && req.signal === call.signal && req.contextValues === call.values && req.service === call.service) return call;
  return {
    method: call.method,
    service: req.service,
    signal: req.signal,
    timeoutMs: () => call.timeoutMs(),
    requestMethod: call.requestMethod,
    requestHeader: req.header,
    responseHeader: call.responseHeader,
    responseTrailer: call.responseTrailer,
    protocolName: call.protocolName,
    values: req.contextValues,
    url: call.url,
  };
}

/** A handler's message as a full message of its type (connect-es' normalize). */
export function normalize(desc: DescMessage, message: unknown) {
  return create(desc, message as never);
}

export function copyHeaders(from: Headers, to: Headers): void {
  if (from === to) return;
  to.forEach((_, key) => to.delete(key));
  from.forEach((value, key) => to.set(key, value));
}

async function ensureSingle<T>(iterable: AsyncIterable<T>, method: string): Promise<T> {
  const it = iterable[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done === true) throw new ConnectError(`protocol error: missing input message for ${method} method`, Code.Unimplemented);
  const second = await it.next();
  if (second.done !== true) throw new ConnectError(`protocol error: received extra input message for ${method} method`, Code.Unimplemented);
  return first.value;
}
