// One HTTP call of a route, under the gateway's egress policy: the URL's host must be allowed, and
// every address its name resolves to is checked inside the connection's own DNS lookup, so the
// address checked is the address connected to (no second lookup to rebind). Redirects are never
// followed: a 3xx is an answer like any other non-2xx.
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import { EgressRefusedError, type EgressPolicy } from "./egress-policy.js";

export interface HttpRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  /** Sent as the body, except for GET. */
  body: Uint8Array;
  timeoutMs: number;
}

export interface HttpAnswer {
  status: number;
  contentType: string;
  body: Buffer;
}

/** No answer within the route's timeout. */
export class HttpTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms (the route's timeout)`);
    this.name = "HttpTimeoutError";
  }
}

/** The connection failed or broke (refused, reset, DNS failure). */
export class HttpConnectionError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "HttpConnectionError";
  }
}

/** The answer's body is larger than the gateway stores. */
export class AnswerTooLargeError extends Error {
  constructor(limit: number) {
    super(`the answer's body is over ${limit} bytes, the largest output stored (CORRAL_MAX_OUTPUT_BYTES)`);
    this.name = "AnswerTooLargeError";
  }
}

/** How much of a non-2xx answer's body is read. */
const ERROR_BODY_BYTES = 8 * 1024;

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * Calls the endpoint. Rejects with EgressRefusedError, HttpTimeoutError, HttpConnectionError,
 * AnswerTooLargeError, or the signal's reason when the task is canceled.
 */
export async function httpCall(req: HttpRequest, policy: EgressPolicy, options: { signal: AbortSignal; maxBodyBytes: number }): Promise<HttpAnswer> {
  const url = new URL(req.url);
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new EgressRefusedError(`only http:// and https:// URLs are called, not ${url.protocol}`);
  const port = url.port !== "" ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
  const host = url.hostname.replace(/^\[|\]$/g, "");
  policy.checkHost(host, port);
  // A literal address is never looked up: check it here.
  if (isIP(host) !== 0) policy.checkAddress(host, port, host);
  let refused: EgressRefusedError | undefined;
  const lookup = (hostname: string, opts: { all?: boolean; family?: number }, callback: LookupCallback) => {
    dnsLookup(hostname, { all: true, family: opts.family ?? 0 }, (err, addresses) => {
      if (err) return callback(err, "");
      try {
        // Every address, not just the first: which one a connection ends up using is not ours to pick.
        for (const a of addresses) policy.checkAddress(hostname, port, a.address);
      } catch (e) {
        refused = e as EgressRefusedError;
        return callback(Object.assign(new Error(refused.message), { code: "ECORRALEGRESS" }), "");
      }
      if (opts.all) callback(null, addresses);
      else callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
  const timeout = AbortSignal.timeout(req.timeoutMs);
  const signal = AbortSignal.any([options.signal, timeout]);
  const client = url.protocol === "https:" ? https : http;
  const sendBody = req.method !== "GET" && req.method !== "HEAD";
  return new Promise<HttpAnswer>((resolve, reject) => {
    const fail = (err: unknown) => {
      if (refused) return reject(refused);
      if (options.signal.aborted) return reject(options.signal.reason);
      if (timeout.aborted) return reject(new HttpTimeoutError(req.timeoutMs));
      if (err instanceof AnswerTooLargeError) return reject(err);
      const e = err as NodeJS.ErrnoException;
      reject(new HttpConnectionError(`calling ${url.origin} failed: ${e.code ? `${e.code} ` : ""}${e.message}`, { cause: err }));
    };
    const request = client.request(
      url,
      {
        method: req.method,
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/plain;q=0.9, */*;q=0.8",
          "user-agent": "corral-gateway",
          ...req.headers,
          ...(sendBody ? { "content-length": String(req.body.length) } : {}),
        },
        lookup: lookup as never,
        signal,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const status = res.statusCode ?? 0;
        const answer = () => ({ status, contentType: String(res.headers["content-type"] ?? ""), body: Buffer.concat(chunks) });
        // Only a 2xx body becomes an output; of any other, the start is enough to quote.
        const ok = status >= 200 && status <= 299;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (ok && size > options.maxBodyBytes) {
            res.destroy(new AnswerTooLargeError(options.maxBodyBytes));
            return;
          }
          chunks.push(chunk);
          if (!ok && size >= ERROR_BODY_BYTES) {
            resolve(answer());
            res.destroy();
          }
        });
        res.on("error", fail);
        res.on("end", () => resolve(answer()));
      },
    );
    request.on("error", fail);
    request.end(sendBody ? req.body : undefined);
  });
}
