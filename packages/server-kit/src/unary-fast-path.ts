// Unary calls in the two binary encodings our own clients send: gRPC with protobuf (service to
// service) and Connect with application/proto (the SDK, the CLI). They are answered straight on the
// Node request and response, without connect-node's universal request and response (async
// iterables over the body, web Headers copied both ways, protocol negotiation), which cost about
// two thirds of a small call's server CPU. The call itself goes through connect-es' own parts: the
// handler context, the same interceptor chain (logging, errors, auth, validation), normalisation
// of the handler's answer, and the error encodings (gRPC status trailers, Connect JSON errors).
// Everything else (JSON, gRPC-Web, Connect GET, compressed bodies, streaming methods, HTTP/1.1
// gRPC) goes on to connect-node unchanged.
import type http from "node:http";
import type http2 from "node:http2";
import { toBinary, type DescMessage, type DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createHandlerContext,
  createServiceImplSpec,
  type HandlerContext,
  type ContextValues,
  type Interceptor,
  type MethodImplSpec,
  type ServiceImpl,
} from "@connectrpc/connect";
import { encodeEnvelope, invokeUnaryImplementation } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorToJsonBytes, parseTimeout as parseConnectTimeout } from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { parseKeepingBytes } from "@corral/wire";

type Request = http.IncomingMessage | http2.Http2ServerRequest;
type Response = http.ServerResponse | http2.Http2ServerResponse;

interface Route {
  spec: MethodImplSpec & { kind: "unary" };
  input: DescMessage;
}

export interface UnaryFastPathOptions {
  services: { service: DescService; impl: Partial<ServiceImpl<any>> }[];
  interceptors: Interceptor[];
  /** Largest request message accepted, in bytes. */
  readMaxBytes: number;
  /** Responses may be compressed: calls whose client accepts gzip or br go to connect-node. */
  compressResponses: boolean;
  /** Context values of a call (the client's address), as connect-node's adapter is given them. */
  contextValues?: (req: Request) => ContextValues;
}

const callEnded = new ConnectError("the call has ended", Code.Canceled);

/** The same bound connect-node applies when none is configured. */
const maxTimeoutMs = Number.MAX_SAFE_INTEGER;

/**
 * Returns a function that takes a request it can answer (and returns true), or returns false
 * without touching the request, for connect-node to answer.
 */
export function createUnaryFastPath(options: UnaryFastPathOptions): (req: Request, res: Response) => boolean {
  const routes = new Map<string, Route>();
  for (const { service, impl } of options.services) {
    const specs = createServiceImplSpec(service, impl).methods;
    for (const method of service.methods) {
      const spec = specs[method.localName];
      if (spec?.kind === "unary") routes.set(`/${service.typeName}/${method.name}`, { spec, input: method.input });
    }
  }

  return (req, res) => {
    if (req.method !== "POST") return false;
    const route = routes.get(req.url ?? "");
    if (!route) return false;
    const headers = req.headers;
    const type = headers["content-type"];
    let grpc: boolean;
    if (type === "application/proto") {
      if (!isIdentity(headers["content-encoding"])) return false;
      if (options.compressResponses && acceptsCompression(headers["accept-encoding"])) return false;
      grpc = false;
    } else if ((type === "application/grpc" || type === "application/grpc+proto") && req.httpVersionMajor === 2) {
      if (!isIdentity(headers["grpc-encoding"])) return false;
      if (options.compressResponses && acceptsCompression(headers["grpc-accept-encoding"])) return false;
      grpc = true;
    } else {
      return false;
    }
    // A Connect request's content-length, when it gives one (connect-es names it in its errors).
    const promised = grpc ? undefined : lengthHint(headers["content-length"]);
    readBody(req, grpc ? options.readMaxBytes + 5 : options.readMaxBytes, promised, (body, tooLarge) => {
      // Errors of the call are answered inside; one here means the answer could not be written.
      answer(route, grpc, promised, req, res, body, tooLarge, options).catch((err: unknown) => res.destroy(err as Error));
    });
    return true;
  };
}

export function acceptsCompression(accept: string | string[] | undefined): boolean {
  const list = str(accept);
  return list !== null && /\b(gzip|br)\b/.test(list);
}

function isIdentity(encoding: string | string[] | undefined): boolean {
  return encoding === undefined || encoding === "identity";
}

/**
 * Collects the body; stops once it is known to pass `limit` bytes (by the promised length, or by
 * what arrived: a gRPC body keeps its envelope's prefix, which names the message's size).
 */
function readBody(req: Request, limit: number, promised: number | undefined, done: (body: Buffer, tooLarge: boolean) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = promised !== undefined && promised > limit;
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    req.off("data", onData);
    req.off("end", finish);
    done(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), tooLarge);
  };
  const onData = (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    if (size > limit) {
      tooLarge = true;
      finish();
    }
  };
  if (tooLarge) return finish();
  req.on("data", onData);
  req.on("end", finish);
}

async function answer(
  route: Route,
  grpc: boolean,
  promised: number | undefined,
  req: Request,
  res: Response,
  body: Buffer,
  tooLarge: boolean,
  options: UnaryFastPathOptions,
): Promise<void> {
  const headers = req.headers;
  const timeout = grpc ? parseGrpcTimeout(str(headers["grpc-timeout"]), maxTimeoutMs) : parseConnectTimeout(str(headers["connect-timeout-ms"]), maxTimeoutMs);
  // The handler's signal also aborts when the client goes away (a reset, a closed connection).
  // (HTTP/2: the request closes with its stream; HTTP/1.1: the response closes with the socket.)
  const cancel = new AbortController();
  const closes: NodeJS.EventEmitter = "stream" in req ? req : res;
  const onClose = () => cancel.abort(new ConnectError("the client canceled the call", Code.Canceled));
  closes.once("close", onClose);
  const context = createHandlerContext({
    ...route.spec,
    service: route.spec.method.parent,
    requestMethod: "POST",
    protocolName: grpc ? "grpc" : "connect",
    timeoutMs: timeout.timeoutMs,
    requestSignal: cancel.signal,
    requestHeader: headerRecord(headers),
    url: `${"encrypted" in req.socket && req.socket.encrypted ? "https" : "http"}://${headers[":authority"] ?? headers.host ?? "localhost"}${req.url}`,
    responseHeader: { "content-type": grpc ? "application/grpc+proto" : "application/proto" },
    responseTrailer: grpc ? { "grpc-status": "0" } : undefined,
    contextValues: options.contextValues?.(req),
  });
  let out: Uint8Array | undefined;
  let error: ConnectError | undefined;
  try {
    if (timeout.error) throw timeout.error;
    // Worded as connect-es words them: the size is named when known (a gRPC envelope's, a Connect
    // request's content-length).
    if (tooLarge) {
      const size = grpc ? (body.length >= 5 ? body.readUInt32BE(1) : undefined) : promised;
      throw new ConnectError(`message size${size === undefined ? "" : ` ${size}`} is larger than configured readMaxBytes ${options.readMaxBytes}`, Code.ResourceExhausted);
    }
    if (promised !== undefined && promised !== body.length) {
      throw new ConnectError(`protocol error: promised ${promised} bytes, received ${body.length}`, Code.InvalidArgument);
    }
    const input = parse(route.input, grpc ? unwrapEnvelope(body) : body);
    const output = await invokeUnaryImplementation(route.spec, context, input, options.interceptors);
    out = toBinary(route.spec.method.output, output);
  } catch (err) {
    context.abort(err);
    error = err instanceof ConnectError ? err : new ConnectError("internal error", Code.Internal, undefined, undefined, err);
  } finally {
    // As connect-es does, the call's signal aborts when the call ends, for anything still tied to
    // it; with a reason, so no DOMException is built per call.
    context.abort(callEnded);
  }
  closes.off("close", onClose);
  if (res.destroyed) return;
  if (grpc) writeGrpc(res, context, out, error);
  else writeConnect(res, context, out, error);
}

function writeGrpc(res: Response, context: HandlerContext, out: Uint8Array | undefined, error: ConnectError | undefined): void {
  const h2 = res as http2.Http2ServerResponse;
  if (error) setTrailerStatus(context.responseTrailer, error);
  h2.writeHead(200, nodeHeaders(context.responseHeader));
  h2.addTrailers(nodeHeaders(context.responseTrailer));
  if (!out) {
    h2.end();
    return;
  }
  h2.end(encodeEnvelope(0, out));
}

function writeConnect(res: Response, context: HandlerContext, out: Uint8Array | undefined, error: ConnectError | undefined): void {
  let status = 200;
  let body: Uint8Array;
  if (error) {
    status = codeToHttpStatus(error.code);
    context.responseHeader.set("content-type", "application/json");
    error.metadata.forEach((value, key) => context.responseHeader.set(key, value));
    body = errorToJsonBytes(error, {});
  } else {
    body = out!;
  }
  // Connect sends a unary call's trailers as headers prefixed with trailer- (trailerMux).
  const header = nodeHeaders(context.responseHeader);
  context.responseTrailer.forEach((value, key) => {
    header[`trailer-${key}`] = value;
  });
  header["content-length"] = String(body.byteLength);
  (res as http.ServerResponse).writeHead(status, header);
  (res as http.ServerResponse).end(body);
}

/** The one message of a unary gRPC request, out of its envelope. */
function unwrapEnvelope(body: Buffer): Uint8Array {
  if (body.length === 0) throw new ConnectError("protocol error: missing input message for unary method", Code.Unimplemented);
  if (body.length < 5) throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
  const length = body.readUInt32BE(1);
  if (body[0] !== 0) throw new ConnectError("protocol error: received a compressed message without grpc-encoding", Code.Internal);
  if (body.length < 5 + length) throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
  if (body.length > 5 + length) throw new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented);
  return body.subarray(5);
}

/** As connect-es reports it, but the client's fault: INVALID_ARGUMENT (see parse-errors.ts). */
export function parse(desc: DescMessage, bytes: Uint8Array) {
  try {
    return parseKeepingBytes(desc, bytes);
  } catch (err) {
    throw new ConnectError(`parse binary: ${err instanceof Error ? err.message : String(err)}`, Code.InvalidArgument);
  }
}

/** A content-length that is a whole number, else undefined. */
function lengthHint(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

export function str(value: string | string[] | undefined): string | null {
  return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
}

/** Request headers as connect-node passes them on: pseudo-headers dropped, repeated ones joined. */
export function headerRecord(headers: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key in headers) {
    if (key.charCodeAt(0) === 58 /* ':' */) continue;
    const value = headers[key];
    if (value !== undefined) out[key] = Array.isArray(value) ? value.join(", ") : String(value);
  }
  return out;
}

export function nodeHeaders(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, key) => {
    out[key] = value;
  });
  return out;
}
