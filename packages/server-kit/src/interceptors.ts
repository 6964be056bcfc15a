// The server's interceptor chain: logging and metrics (outermost), error mapping, authentication,
// then request validation (innermost, so handlers only see valid messages).
import { randomUUID, timingSafeEqual } from "node:crypto";
import { Code, ConnectError, type Interceptor, type StreamRequest, type UnaryRequest } from "@connectrpc/connect";
import { createValidator, Violation, violationsToProto } from "@bufbuild/protovalidate";
import { pathToString, reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import type { DescMessage, Message } from "@bufbuild/protobuf";
import type { Logger } from "pino";
import { callerKey, keyRevokedKey, parseApiKey, peerAddressKey, type ApiKeyVerifier, type Caller } from "./auth.js";
import type { AuthThrottle } from "./auth-throttle.js";
import { LruCache } from "./lru-cache.js";
import type { StreamKeyWatch } from "./stream-key-watch.js";
import { CheckedStream, RevocableStream, StreamTap, type TapHooks } from "./stream-taps.js";
import { toConnectError } from "./errors.js";
import type { KeyCheckResult, RpcMetrics } from "./metrics.js";
import { createFastValidator } from "./fast-validator.js";
import { parseErrorAsInvalidArgument } from "./parse-errors.js";
import { createTextChecker } from "./storable-text.js";

export const requestIdHeader = "x-request-id";

/** Services that answer without a key: health and reflection. */
export const publicServices = new Set([
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
]);

/** A caller's request id we echo and log: short, and nothing a log line or header could trip on. */
const safeRequestId = /^[A-Za-z0-9._:@+=\/-]{1,128}$/;

/** The caller's `x-request-id` when it is safe to echo, else a new one. */
export function requestIdOf(header: string | null): string {
  return header !== null && safeRequestId.test(header) ? header : randomUUID();
}

function clientLeft(signal: AbortSignal): boolean {
  return signal.aborted && ConnectError.from(signal.reason).code !== Code.DeadlineExceeded;
}

/**
 * One call's log line and metrics, written when it ends; for a stream, at its end, its error, or
 * an early return (the response could not be written on: the client is gone). An object, not a
 * closure per call: see keepNames in envelope-reader.ts.
 */
class CallLog implements TapHooks {
  readonly #logger: Logger;
  readonly #metrics: RpcMetrics | undefined;
  readonly #signal: AbortSignal;
  readonly #service: string;
  readonly #method: string;
  readonly #started = performance.now();
  readonly requestId: string;

  constructor(logger: Logger, metrics: RpcMetrics | undefined, req: UnaryRequest | StreamRequest) {
    this.#logger = logger;
    this.#metrics = metrics;
    this.#signal = req.signal;
    this.#service = req.service.typeName;
    this.#method = req.method.name;
    this.requestId = requestIdOf(req.header.get(requestIdHeader));
  }

  onEnd(err: unknown, canceled: boolean): void {
    this.finish(canceled ? new ConnectError("the client canceled the call", Code.Canceled) : err);
  }

  finish(err: unknown): void {
    let code = err === undefined ? undefined : ConnectError.from(err).code;
    // The client went away mid-call (a reset, a closed connection): whatever broke afterwards
    // (a write to the gone stream, a read of its body) is its cancel, not our failure.
    // (Its deadline passing aborts the signal too: that stays what it is.)
    if (err !== undefined && code !== Code.Canceled && code !== Code.DeadlineExceeded && clientLeft(this.#signal)) code = Code.Canceled;
    const codeName = code === undefined ? "ok" : Code[code].toLowerCase();
    const durationMs = performance.now() - this.#started;
    const [service, method, logger] = [this.#service, this.#method, this.#logger];
    this.#metrics?.requests.inc({ service, method, code: codeName });
    this.#metrics?.duration.observe({ service, method }, durationMs / 1000);
    const fields = { requestId: this.requestId, rpcService: service, method, code: codeName, durationMs: Math.round(durationMs * 100) / 100 };
    if (code === Code.Internal) {
      logger.error({ ...fields, err: (err as { cause?: unknown }).cause ?? err }, "rpc failed");
    } else if (code === Code.Unavailable) {
      logger.warn({ ...fields, err: (err as { cause?: unknown }).cause ?? err }, "rpc unavailable");
    } else if (code === Code.Canceled) {
      logger.info(fields, "rpc canceled by the client");
    } else {
      logger.debug(fields, "rpc");
    }
  }
}

export function createLoggingInterceptor(logger: Logger, metrics?: RpcMetrics): Interceptor {
  return (next) => async (req) => {
    const log = new CallLog(logger, metrics, req);
    try {
      const res = await next(req);
      res.header.set(requestIdHeader, log.requestId);
      if (!res.stream) {
        log.finish(undefined);
        return res;
      }
      return { ...res, message: StreamTap.around(res.message, log) };
    } catch (err) {
      log.finish(err);
      throw err;
    }
  };
}

const mapErrors = { mapError: toConnectError };

/** Maps domain errors (and anything else) thrown by handlers to ConnectErrors a client can act on. */
export function createErrorInterceptor(): Interceptor {
  return (next) => async (req) => {
    try {
      const res = await next(req);
      if (!res.stream) return res;
      return { ...res, message: new StreamTap(res.message, mapErrors) };
    } catch (err) {
      throw toConnectError(err);
    }
  };
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export interface AuthOptions {
  verifier: ApiKeyVerifier;
  /** The internal key services call each other with. */
  serviceKey?: string;
  /** Full procedure names (`/pkg.Service/Method`) or service type names only the service key may call. */
  internal: Set<string>;
  /** Refuses addresses that fail too many key checks, before their keys are looked up. */
  throttle?: AuthThrottle;
  /** Re-checks the keys of open response streams; revoked ones end with UNAUTHENTICATED. */
  streams?: StreamKeyWatch;
  metrics?: RpcMetrics;
}

/** Keys that verified lately, from any address: they are looked up even when their address is throttled. */
const recentlyGoodMs = 10 * 60_000;

export function createAuthInterceptor(options: AuthOptions): Interceptor {
  const recentlyGood = new LruCache<string, number>(10_000);
  const count = (result: KeyCheckResult) => options.metrics?.keyChecks.inc({ result });
  /** Keys being checked now, so concurrent callers with one key share one check and one token. */
  const checking = new Map<string, Promise<Caller | undefined>>();

  /** Takes a throttle token of `address` (unless the key verified lately) and verifies the key. */
  async function verifyThrottled(token: string, address: string): Promise<Caller | undefined> {
    const good = recentlyGood.get(token);
    const trusted = good !== undefined && Date.now() - good < recentlyGoodMs;
    const throttle = trusted ? undefined : options.throttle;
    const wait = throttle ? throttle.take(address) : 0;
    if (wait > 0) {
      count("throttled");
      throw new ConnectError(
        `too many failed API key checks from this address; retry after ${wait} ms`,
        Code.ResourceExhausted,
        { "retry-after-ms": String(wait) },
      );
    }
    let caller: Caller | undefined;
    try {
      caller = await options.verifier.verify(token);
    } catch (err) {
      // The registry did not answer: not the client's failure.
      throttle?.refund(address);
      throw err;
    }
    if (caller) {
      recentlyGood.set(token, Date.now());
      throttle?.refund(address);
    } else recentlyGood.delete(token);
    return caller;
  }

  function checkKey(token: string, address: string): Promise<Caller | undefined> {
    const p = verifyThrottled(token, address).finally(() => checking.delete(token));
    checking.set(token, p);
    return p;
  }
  return (next) => async (req) => {
    const service = req.service.typeName;
    if (publicServices.has(service)) return next(req);
    const header = req.header.get("authorization") ?? "";
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) throw new ConnectError("missing API key: send Authorization: Bearer <key>", Code.Unauthenticated);
    const token = m[1]!;
    let caller: Caller | undefined;
    if (options.serviceKey && safeEqual(token, options.serviceKey)) {
      caller = { kind: "service", teamId: "", keyId: "service" };
    } else {
      // A key of the wrong shape cannot exist: no lookup, and nothing for the throttle to count.
      if (!parseApiKey(token)) {
        count("malformed");
        throw new ConnectError("invalid API key: expected corral_<key id>_<secret>", Code.Unauthenticated);
      }
      const address = req.contextValues.get(peerAddressKey);
      // A lookup of this key already under way holds a throttle token for it: callers arriving
      // meanwhile (a fleet of runners starting with one key) wait for its answer instead of each
      // taking a token of their own.
      const joined = checking.get(token);
      // A joined check refused for its own caller's address (throttled) is no answer for this one.
      caller = joined ? await joined.catch(() => checkKey(token, address)) : await checkKey(token, address);
    }
    count(caller ? "ok" : "invalid");
    if (!caller) throw new ConnectError("invalid or revoked API key", Code.Unauthenticated);
    const isInternal =
      options.internal.has(service) || options.internal.has(`/${service}/${req.method.name}`);
    if (isInternal && caller.kind !== "service") {
      throw new ConnectError(`${req.method.name} is internal: service key only`, Code.PermissionDenied);
    }
    req.contextValues.set(callerKey, caller);
    const streaming = req.method.methodKind === "server_streaming" || req.method.methodKind === "bidi_streaming";
    // The service key is the suite's own; only teams' keys can be revoked.
    if (!streaming || caller.kind !== "user" || !options.streams) return next(req);
    const watched = options.streams.watch(token);
    req.contextValues.set(keyRevokedKey, watched);
    try {
      const res = await next(req);
      if (!res.stream) {
        watched.release();
        return res;
      }
      return { ...res, message: new RevocableStream(res.message, watched) };
    } catch (err) {
      watched.release();
      throw err;
    }
  };
}

/**
 * Violations reported per error. The message and details travel in the gRPC trailers, which an
 * HTTP/2 peer refuses beyond its header list limit: a list of 10,000 bad items must not turn
 * INVALID_ARGUMENT into a broken stream.
 */
const maxReportedViolations = 20;

function violationMessage(violations: Violation[], at: string): string {
  const shown = violations
    .slice(0, maxReportedViolations)
    .map((v) => `${at}${pathToString(v.field)}${v.forKey ? " (key)" : ""}: ${v.message}`)
    .join("; ");
  const more = violations.length - maxReportedViolations;
  return printable(more > 0 ? `${shown}; and ${more} more` : shown);
}

/**
 * Control characters and lone surrogates (a map key that broke a rule is quoted as it came)
 * escaped: a grpc-message cannot be percent-encoded with a lone surrogate in it.
 */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

interface RequestValidator {
  /**
   * Throws INVALID_ARGUMENT naming the fields that break `schema`'s protovalidate rules; `at` is
   * the path of `message` inside the request, put before each field's name.
   */
  check(schema: DescMessage, message: unknown, at?: string): void;
}

/** Whether `schema` holds, at some depth, a message of a type that encloses it (WorkRequest's batch). */
function isRecursive(schema: DescMessage, open: DescMessage[] = [], seen = new Set<DescMessage>()): boolean {
  if (open.includes(schema)) return true;
  if (seen.has(schema)) return false;
  seen.add(schema);
  open.push(schema);
  const found = schema.fields.some((f) => {
    const nested = f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message") || (f.fieldKind === "map" && f.mapKind === "message") ? f.message : undefined;
    return nested !== undefined && isRecursive(nested, open, seen);
  });
  open.pop();
  return found;
}

/**
 * The messages inside `message` whose type is one of their enclosing types, each with its path
 * (`batch.messages[1].`); not looked into further.
 */
function selfNested(schema: DescMessage, message: unknown): Array<[string, DescMessage, Message]> {
  const out: Array<[string, DescMessage, Message]> = [];
  const walk = (r: ReflectMessage, path: string, open: DescMessage[]) => {
    const visit = (m: ReflectMessage, p: string) => {
      if (open.includes(m.desc)) out.push([`${p}.`, m.desc, m.message]);
      else walk(m, `${p}.`, [...open, m.desc]);
    };
    for (const f of r.desc.fields) {
      if (!r.isSet(f)) continue;
      const name = path + f.name;
      if (f.fieldKind === "message") visit(r.get(f), name);
      else if (f.fieldKind === "list" && f.listKind === "message") [...r.get(f)].forEach((m, i) => visit(m as ReflectMessage, `${name}[${i}]`));
      else if (f.fieldKind === "map" && f.mapKind === "message") for (const [k, m] of r.get(f)) visit(m as ReflectMessage, `${name}[${JSON.stringify(k)}]`);
    }
  };
  walk(reflect(schema, message as Message), "", [schema]);
  return out;
}

/**
 * Protovalidate rules checked the way every request is: a fast pass first, protovalidate for what
 * it does not pass. Protovalidate does not look inside a message nested in its own type (its plan
 * of the inner one is cut short), so those are checked here one by one.
 */
function createRequestValidator(): RequestValidator {
  const validator = createValidator();
  const fast = createFastValidator();
  const text = createTextChecker();
  const recursive = new Map<DescMessage, boolean>();
  const invalid = (violations: Violation[], at: string) => {
    const [value, desc] = violationsToProto(violations.slice(0, maxReportedViolations));
    return new ConnectError(violationMessage(violations, at), Code.InvalidArgument, undefined, [{ desc, value }]);
  };
  const validate = (schema: DescMessage, message: unknown, at: string): void => {
    if (fast.of(schema)?.(message)) return;
    const result = validator.validate(schema, message as never);
    if (result.kind === "invalid") throw invalid(result.error.violations, at);
    if (result.kind !== "valid") {
      throw new ConnectError("request validation failed", Code.Internal, undefined, undefined, result.error);
    }
    let r = recursive.get(schema);
    if (r === undefined) recursive.set(schema, (r = isRecursive(schema)));
    if (r) for (const [path, desc, inner] of selfNested(schema, message)) validate(desc, inner, at + path);
  };
  const check = (schema: DescMessage, message: unknown, at = ""): void => {
    // Text Postgres cannot store, in any string at any depth (self-nested messages included).
    const bad = text.find(schema, message);
    if (bad) throw invalid([new Violation(bad.reason, "string.storable_text", bad.path, [], bad.forKey)], at);
    validate(schema, message, at);
  };
  return { check };
}

/** Validates every request message against its protovalidate rules: INVALID_ARGUMENT naming the field. */
export function createValidationInterceptor(): Interceptor {
  const check = createRequestValidator().check;
  return (next) => async (req) => {
    if (!req.stream) {
      check(req.method.input, req.message);
      return next(req);
    }
    // A frame that is not valid protobuf is the client's fault (connect-es says INTERNAL).
    const validated = new CheckedStream(req.message, check, req.method.input, parseErrorAsInvalidArgument);
    return next({ ...req, message: validated } as StreamRequest);
  };
}
