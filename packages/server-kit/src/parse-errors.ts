// connect-es answers a request body that is not valid protobuf (malformed bytes, invalid UTF-8 in
// a string) with INTERNAL ("parse binary: ..."), before any interceptor runs. That is the
// client's fault, so these handler wrappers answer INVALID_ARGUMENT instead, for the Connect
// unary error body and for gRPC status trailers (or trailers-only headers). A unary JSON request
// protobuf-es refused (an unknown field or enum name) gets the offending field named.
import type { DescMessage } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";
import { locateJsonError } from "./json-field-errors.js";

const parsePrefix = "parse binary:";

/** The same for a request stream's messages, which handlers read through the interceptors. */
export function parseErrorAsInvalidArgument(err: unknown): unknown {
  if (err instanceof ConnectError && err.code === Code.Internal && err.rawMessage.startsWith(parsePrefix)) {
    return new ConnectError(err.rawMessage, Code.InvalidArgument, undefined, undefined, err);
  }
  return err;
}

function fixGrpcStatus(h: Headers | undefined): void {
  if (!h || h.get("grpc-status") !== "13") return;
  const message = h.get("grpc-message") ?? "";
  let text = message;
  try {
    text = decodeURIComponent(message);
  } catch {
    // not percent-encoded
  }
  if (text.startsWith(parsePrefix)) h.set("grpc-status", "3");
}

async function* concat(chunks: Uint8Array[]) {
  for (const c of chunks) yield c;
}

async function fixResponse(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  const type = res.header?.get("content-type") ?? "";
  if (type.startsWith("application/grpc")) {
    fixGrpcStatus(res.header);
    if (!res.body) return res;
    const body = res.body;
    return {
      ...res,
      body: (async function* () {
        yield* body;
        fixGrpcStatus(res.trailer);
      })(),
    };
  }
  if (res.status === 500 && type.startsWith("application/json") && res.body) {
    const chunks: Uint8Array[] = [];
    for await (const c of res.body) chunks.push(c);
    const bytes = Buffer.concat(chunks);
    try {
      const err = JSON.parse(bytes.toString("utf8")) as { code?: string; message?: string };
      if (err.code === "internal" && err.message?.startsWith(parsePrefix)) {
        const fixed = Buffer.from(JSON.stringify({ ...err, code: "invalid_argument" }));
        res.header?.set("content-length", String(fixed.byteLength));
        return { ...res, status: 400, body: concat([fixed]) };
      }
    } catch {
      // not a Connect error body
    }
    return { ...res, body: concat(chunks) };
  }
  return res;
}

const jsonDecodePrefix = "cannot decode ";

/** Reads a unary Connect JSON request as the handler does, keeping its bytes to name a field it refused. */
async function answerNamingJsonField(h: UniversalHandler, req: UniversalServerRequest, input: DescMessage): Promise<UniversalServerResponse> {
  const source = req.body as AsyncIterable<Uint8Array>;
  const chunks: Uint8Array[] = [];
  const res = await h({
    ...req,
    body: (async function* () {
      for await (const c of source) {
        chunks.push(c);
        yield c;
      }
    })(),
  });
  if (res.status !== 400 || !res.body || !(res.header?.get("content-type") ?? "").startsWith("application/json")) return res;
  const out: Uint8Array[] = [];
  for await (const c of res.body) out.push(c);
  try {
    const err = JSON.parse(Buffer.concat(out).toString("utf8")) as { code?: string; message?: string };
    if (err.code === "invalid_argument" && err.message?.startsWith(jsonDecodePrefix)) {
      const named = locateJsonError(input, JSON.parse(Buffer.concat(chunks).toString("utf8")));
      if (named) {
        const fixed = Buffer.from(JSON.stringify({ ...err, message: named }));
        res.header?.set("content-length", String(fixed.byteLength));
        return { ...res, body: concat([fixed]) };
      }
    }
  } catch {
    // not JSON after all: answer as the handler did
  }
  return { ...res, body: concat(out) };
}

function isUnaryJson(h: UniversalHandler, req: UniversalServerRequest): boolean {
  return (
    h.method.methodKind === "unary" &&
    req.method === "POST" &&
    (req.header.get("content-type") ?? "").startsWith("application/json") &&
    typeof req.body === "object" &&
    req.body !== null &&
    Symbol.asyncIterator in req.body
  );
}

/** Wraps every handler the router holds; call after registering the services. */
export function answerParseErrorsAsInvalidArgument(router: ConnectRouter): void {
  const handlers = router.handlers as UniversalHandler[];
  for (let i = 0; i < handlers.length; i++) {
    const h = handlers[i]!;
    handlers[i] = Object.assign(
      async (req: UniversalServerRequest) => fixResponse(isUnaryJson(h, req) ? await answerNamingJsonField(h, req, h.method.input) : await h(req)),
      {
        protocolNames: h.protocolNames,
        supportedContentType: h.supportedContentType,
        allowedMethods: h.allowedMethods,
        requestPath: h.requestPath,
        service: h.service,
        method: h.method,
      },
    ) as UniversalHandler;
  }
}
