// Streaming calls in binary gRPC over HTTP/2 without compression (the runner's Work stream, the
// SDK's WatchJob in gRPC), served straight on the Node request and response. connect-node's
// pipeline wraps each call in about a dozen async-generator stages (request body, envelope
// split, decompression, parse, serialize, compression, join, catch), each a downlevelled
// generator of a dozen closures, contexts and promises: about two thirds of the heap an idle Work
// stream holds on the broker. Here the body is read by one generator and answers are written as
// they come; the call itself still goes through connect-es' own parts: the handler context, the
// same interceptor chain (transformInvokeImplementation) and the gRPC status trailers.
// Everything else (Connect and gRPC-Web streams, compressed bodies, JSON) goes to connect-node.
import type http from "node:http";
import type http2 from "node:http2";
import { toBinary, type DescMessage, type DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  createServiceImplSpec,
  type ContextValues,
  type Interceptor,
  type MethodImplSpec,
  type ServiceImpl,
} from "@connectrpc/connect";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { EnvelopeReader } from "./envelope-reader.js";
import { copyHeaders, invokeStream, normalize, StreamCall } from "./stream-call.js";
import { acceptsCompression, headerRecord, nodeHeaders, str } from "./unary-fast-path.js";

type Request = http.IncomingMessage | http2.Http2ServerRequest;
type Response = http.ServerResponse | http2.Http2ServerResponse;

interface Route {
  spec: MethodImplSpec;
  input: DescMessage;
  output: DescMessage;
}

export interface StreamFastPathOptions {
  services: { service: DescService; impl: Partial<ServiceImpl<any>> }[];
  interceptors: Interceptor[];
  /** Largest request message accepted, in bytes. */
  readMaxBytes: number;
  /** Responses may be compressed: calls whose client accepts gzip or br go to connect-node. */
  compressResponses: boolean;
  contextValues?: (req: Request) => ContextValues;
}

const maxTimeoutMs = Number.MAX_SAFE_INTEGER;

/**
 * Returns a function that takes a streaming gRPC call it can serve (and returns true), or returns
 * false without touching the request, for connect-node to answer.
 */
export function createStreamFastPath(options: StreamFastPathOptions): (req: Request, res: Response) => boolean {
  const routes = new Map<string, Route>();
  for (const { service, impl } of options.services) {
    const specs = createServiceImplSpec(service, impl).methods;
    for (const method of service.methods) {
      const spec = specs[method.localName];
      if (spec && spec.kind !== "unary") routes.set(`/${service.typeName}/${method.name}`, { spec, input: method.input, output: method.output });
    }
  }
  return (req, res) => {
    if (req.method !== "POST" || req.httpVersionMajor !== 2) return false;
    const route = routes.get(req.url ?? "");
    if (!route) return false;
    const headers = req.headers;
    const type = headers["content-type"];
    if (type !== "application/grpc" && type !== "application/grpc+proto") return false;
    if (headers["grpc-encoding"] !== undefined && headers["grpc-encoding"] !== "identity") return false;
    if (options.compressResponses && acceptsCompression(headers["grpc-accept-encoding"])) return false;
    serve(route, req as http2.Http2ServerRequest, res as http2.Http2ServerResponse, options).catch((err: unknown) => res.destroy(err as Error));
    return true;
  };
}

async function serve(route: Route, req: http2.Http2ServerRequest, res: http2.Http2ServerResponse, options: StreamFastPathOptions): Promise<void> {
  const headers = req.headers;
  const timeout = parseTimeout(str(headers["grpc-timeout"]), maxTimeoutMs);
  const call = new StreamCall({
    spec: route.spec,
    timeoutMs: timeout.timeoutMs,
    requestHeader: new Headers(headerRecord(headers)),
    url: `${"encrypted" in req.socket && req.socket.encrypted ? "https" : "http"}://${headers[":authority"] ?? headers.host ?? "localhost"}${req.url}`,
    values: options.contextValues?.(req) ?? createContextValues(),
  });
  // The handler's signal also aborts when the client goes away (the stream closes).
  // (`on` and `off`, not `once`: no wrapper per stream.)
  req.on("close", call.clientLeft);
  const input = new EnvelopeReader(req, route.input, options.readMaxBytes, timeout.error);
  let error: ConnectError | undefined;
  try {
    const answer = await invokeStream(call, input, options.interceptors);
    const output = answer.message[Symbol.asyncIterator]();
    for (;;) {
      const next = await output.next();
      if (next.done) break;
      if (res.destroyed || res.stream.closed) {
        // The client is gone: end the call (its finally blocks run) and write nothing.
        await output.return?.();
        return;
      }
      if (!res.headersSent) res.writeHead(200, nodeHeaders(call.responseHeader));
      if (!res.write(encodeEnvelope(0, toBinary(route.output, normalize(route.output, next.value))))) await drained(res);
    }
    copyHeaders(answer.trailer, call.responseTrailer);
  } catch (err) {
    call.abort(err);
    error = err instanceof ConnectError ? err : new ConnectError("internal error", Code.Internal, undefined, undefined, err);
  } finally {
    // As connect-es does, the call's signal aborts when the call ends.
    call.abort();
    req.off("close", call.clientLeft);
  }
  if (res.destroyed || res.stream.closed) return;
  if (error) setTrailerStatus(call.responseTrailer, error);
  if (!res.headersSent) res.writeHead(200, nodeHeaders(call.responseHeader));
  res.addTrailers(nodeHeaders(call.responseTrailer));
  res.end();
}

/** Until the response can take more, or is gone. */
function drained(res: http2.Http2ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}
