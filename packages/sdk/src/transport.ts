// The HTTP/2 transport the Client talks over, with the API key and UNAVAILABLE retries as
// interceptors: unary calls written straight onto an HTTP/2 session (@corral/wire's h2-transport),
// streams over connect-node.
import { Code, ConnectError, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { createAuthInterceptor, createH2Transport, type WireProtocol } from "@corral/wire";

export type Protocol = WireProtocol;

export interface RetryOptions {
  /** Attempts in all, the first included (default 5). 1 disables retries. */
  maxAttempts?: number;
  /** Delay before the first retry; doubles each time, with jitter (default 100 ms). */
  baseDelayMs?: number;
  /** Upper bound of one delay (default 3 s). */
  maxDelayMs?: number;
}

export interface TransportOptions {
  baseUrl: string;
  apiKey?: string;
  protocol?: Protocol;
  retry?: RetryOptions;
  /**
   * Which URL and key this is (`describeConnection`), appended to UNAUTHENTICATED and UNAVAILABLE
   * errors so a newcomer sees which server and which key (by id, never the secret) were tried.
   */
  connection?: string;
  /** Extra interceptors, run inside the auth and retry ones. */
  interceptors?: Interceptor[];
  /** HTTP/2 PINGs of long-lived streams (default `streamKeepalive`: after 15 s without data, 10 s to answer). */
  keepalive?: { pingIntervalMs: number; pingTimeoutMs: number };
}

/** Adds `Authorization: Bearer <key>` to every request (the one interceptor services use too). */
export { createAuthInterceptor };

/** Exponential backoff with full jitter: a delay in [d/2, d] where d = base * 2^attempt, capped. */
export function backoffDelay(attempt: number, baseDelayMs: number, maxDelayMs: number, random = Math.random): number {
  const d = Math.min(maxDelayMs, baseDelayMs * 2 ** attempt);
  return d / 2 + random() * (d / 2);
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Retries unary calls that fail with UNAVAILABLE (a service restarting, a dropped connection).
 * Streams are not retried here: their callers know what resuming means.
 */
export function createRetryInterceptor(options: RetryOptions = {}): Interceptor {
  const maxAttempts = Math.max(1, options.maxAttempts ?? 5);
  const base = options.baseDelayMs ?? 100;
  const max = options.maxDelayMs ?? 3000;
  return (next) => async (req) => {
    if (req.stream) return next(req);
    for (let attempt = 0; ; attempt++) {
      try {
        return await next(req);
      } catch (err) {
        const ce = ConnectError.from(err);
        if (ce.code !== Code.Unavailable || attempt + 1 >= maxAttempts || req.signal.aborted) throw err;
        await sleep(backoffDelay(attempt, base, max), req.signal).catch(() => {
          throw err;
        });
      }
    }
  };
}

/** Codes whose cause is usually the connection itself: a wrong URL, a suite not started, a wrong key. */
const connectionCodes = new Set([Code.Unauthenticated, Code.Unavailable]);

/**
 * Appends `(url …, key <id> from <source>)` to UNAUTHENTICATED and UNAVAILABLE errors of unary
 * calls; the code, metadata and details stay as they were, so callers still branch on the code.
 */
export function createConnectionHintInterceptor(connection: string): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (err) {
      const ce = ConnectError.from(err);
      if (!connectionCodes.has(ce.code)) throw err;
      const hinted = new ConnectError(`${ce.rawMessage} (${connection})`, ce.code, ce.metadata, undefined, ce.cause);
      hinted.details.push(...ce.details);
      throw hinted;
    }
  };
}

/**
 * Long-lived streams (a runner's Work stream, WatchJob) learn that their connection died from
 * HTTP/2 PINGs: one after 15 s without data, the connection and its streams closed when no answer
 * comes within 10 s, well within a lease. A PING is answered by the server's HTTP/2 layer, without
 * any of its code.
 */
export const streamKeepalive = { pingIntervalMs: 15_000, pingTimeoutMs: 10_000 } as const;

/** A Connect or gRPC transport over HTTP/2 (h2c for http:// URLs) with auth and retries. */
export function createTransport(options: TransportOptions): Transport {
  const interceptors: Interceptor[] = [];
  // Outermost, so the hint is added once, after the retries gave up.
  if (options.connection) interceptors.push(createConnectionHintInterceptor(options.connection));
  interceptors.push(createRetryInterceptor(options.retry));
  if (options.apiKey) interceptors.push(createAuthInterceptor(options.apiKey));
  interceptors.push(...(options.interceptors ?? []));
  const baseUrl = options.baseUrl.replace(/\/+$/, "");
  const protocol = options.protocol ?? "connect";
  const keepalive = options.keepalive ?? streamKeepalive;
  return createH2Transport({
    baseUrl,
    protocol,
    interceptors,
    streams: () =>
      protocol === "grpc"
        ? createGrpcTransport({ baseUrl, interceptors, ...keepalive })
        : createConnectTransport({ baseUrl, httpVersion: "2", interceptors, ...keepalive }),
  });
}
