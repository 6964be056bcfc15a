// One HTTP/2 server per process: gRPC, gRPC-Web and Connect on one port for every mounted service,
// plus health, reflection and /metrics. Plain-text connections speak h2c (HTTP/2 with prior
// knowledge) or HTTP/1.1 (gRPC-Web and Connect from browsers, Prometheus scrapes), told apart by the
// HTTP/2 preface; with a certificate, TLS and ALPN choose.
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Tracer } from "@opentelemetry/api";
import { Health } from "@corral/proto/grpc";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { createContextValues, type ContextValues } from "@connectrpc/connect";
import { peerAddressKey, type ApiKeyVerifier } from "./auth.js";
import { createAuthThrottle, type AuthThrottleOptions } from "./auth-throttle.js";
import { createStreamKeyWatch } from "./stream-key-watch.js";
import { createHealthState, HealthStatus, type HealthState } from "./health.js";
import {
  createAuthInterceptor,
  createErrorInterceptor,
  createLoggingInterceptor,
  createValidationInterceptor,
} from "./interceptors.js";
import { createTracingInterceptor } from "./tracing/tracing-interceptor.js";
import { createConnectionGuard, defaultConnectionLimits, type ConnectionLimits } from "./connection-guard.js";
import { createLogger } from "./logger.js";
import { answerParseErrorsAsInvalidArgument } from "./parse-errors.js";
import { createRpcMetrics, type RpcMetrics } from "./metrics.js";
import { createReflection } from "./reflection.js";
import { createStreamFastPath } from "./stream-fast-path.js";
import { createUnaryFastPath } from "./unary-fast-path.js";
import { loadConsoleFiles } from "./console-files.js";

export interface ServiceMount {
  service: DescService;
  impl: Partial<ServiceImpl<any>>;
  /** RPC names (or `true` for the whole service) that only the internal service key may call. */
  internal?: true | readonly string[];
}

/** Builds a mount with the handlers typed against the service. */
export function mount<S extends DescService>(
  service: S,
  impl: Partial<ServiceImpl<S>>,
  internal?: true | readonly string[],
): ServiceMount {
  return { service, impl: impl as Partial<ServiceImpl<any>>, internal };
}

export interface ServerOptions {
  /** Process name for logs and metrics (`cluster-registry`, `corral-dev`). */
  name: string;
  mounts: ServiceMount[];
  port?: number;
  host?: string;
  tls?: { cert: string | Buffer; key: string | Buffer };
  verifier: ApiKeyVerifier;
  serviceKey?: string;
  /**
   * How often open streams' keys are asked again (the key cache time; default 2 s): a revoked
   * key's streams end with UNAUTHENTICATED within about this long.
   */
  keyRecheckMs?: number;
  /** Failed key checks allowed per client address (defaults: 20 a second, bursts of 50). */
  authThrottle?: AuthThrottleOptions;
  /**
   * Take the client's address from the last X-Forwarded-For entry (set only behind a proxy that
   * writes it); default: the connection's peer address.
   */
  trustForwardedFor?: boolean;
  logger?: Logger;
  metrics?: RpcMetrics;
  /** More registries served on /metrics with the RPC metrics (e.g. the broker's dispatch metrics). */
  extraMetrics?: Registry[];
  /** When tracing is on: each unary call is a span (see tracing-interceptor.ts). */
  tracer?: Tracer;
  /** Largest request message accepted, in bytes (default 8 MiB). */
  readMaxBytes?: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection (default 1,000). */
  maxConcurrentStreams?: number;
  /**
   * Responses at least this large are compressed when the client accepts it; 0 or unset: never.
   * Compressed requests are always accepted (gzip, br).
   */
  compressMinBytes?: number;
  /**
   * Unary calls in binary gRPC and Connect are answered without connect-node's adapter
   * (unary-fast-path.ts); false sends every call through connect-node (default true).
   */
  unaryFastPath?: boolean;
  /**
   * Streaming calls in binary gRPC over HTTP/2 are served without connect-node's pipeline
   * (stream-fast-path.ts); false sends them through connect-node (default true; off as well when
   * `unaryFastPath` is false).
   */
  streamFastPath?: boolean;
  /** Connection caps and the deadlines idle or slow connections get (defaults: `defaultConnectionLimits`). */
  connectionLimits?: Partial<ConnectionLimits>;
  /**
   * The built web console to serve at / (a folder holding index.html and assets/); unset or
   * missing: no console, / answers 404.
   */
  consoleDir?: string;
}

export interface CorralServer {
  readonly port: number;
  readonly url: string;
  readonly health: HealthState;
  readonly metrics: RpcMetrics;
  readonly logger: Logger;
  listen(): Promise<void>;
  /** Marks every mounted service SERVING (call once stores answer) or NOT_SERVING. */
  setServing(serving: boolean): void;
  /** Stops accepting, lets open calls finish for `graceMs`, then cuts what is left. Idempotent. */
  close(graceMs?: number): Promise<void>;
}

const http2Preface = Buffer.from("PRI * HTTP/2.0");

/**
 * Who is calling, for throttling failed key checks: the TCP peer (an HTTP/2 request's socket is its
 * session's), or the last X-Forwarded-For entry (the one the nearest proxy wrote) when trusted.
 */
function peerAddress(req: http.IncomingMessage | http2.Http2ServerRequest, trustForwardedFor: boolean): string {
  if (trustForwardedFor) {
    const forwarded = req.headers["x-forwarded-for"];
    const last = (Array.isArray(forwarded) ? forwarded.join(",") : forwarded ?? "").split(",").pop()?.trim();
    if (last) return last;
  }
  return req.socket?.remoteAddress ?? "";
}

export function createServer(options: ServerOptions): CorralServer {
  const logger = options.logger ?? createLogger(options.name);
  const metrics = options.metrics ?? createRpcMetrics();
  const serviceNames = options.mounts.map((m) => m.service.typeName);
  const health = createHealthState(serviceNames);
  const reflection = createReflection([...options.mounts.map((m) => m.service), Health]);

  const internal = new Set<string>();
  for (const m of options.mounts) {
    if (m.internal === true) internal.add(m.service.typeName);
    else for (const rpc of m.internal ?? []) internal.add(`/${m.service.typeName}/${rpc}`);
  }

  const routes = (router: ConnectRouter) => {
    for (const m of options.mounts) router.service(m.service, m.impl);
    router.service(Health, health.impl);
    router.service(reflection.v1.service, reflection.v1.impl);
    router.service(reflection.v1alpha.service, reflection.v1alpha.impl);
    answerParseErrorsAsInvalidArgument(router);
  };

  const streamKeys = createStreamKeyWatch({ verifier: options.verifier, intervalMs: options.keyRecheckMs ?? 2_000, logger });
  const interceptors = [
    ...(options.tracer ? [createTracingInterceptor(options.tracer)] : []),
    createLoggingInterceptor(logger, metrics),
    createErrorInterceptor(),
    createAuthInterceptor({
      verifier: options.verifier,
      serviceKey: options.serviceKey,
      internal,
      throttle: createAuthThrottle(options.authThrottle),
      streams: streamKeys,
      metrics,
    }),
    createValidationInterceptor(),
  ];
  const readMaxBytes = options.readMaxBytes ?? 8 * 1024 * 1024;
  const consoleFiles = loadConsoleFiles(options.consoleDir);
  const peerContext = (req: http.IncomingMessage | http2.Http2ServerRequest): ContextValues =>
    createContextValues().set(peerAddressKey, peerAddress(req, options.trustForwardedFor ?? false));
  const fastPath = createUnaryFastPath({
    services: [...options.mounts, { service: Health, impl: health.impl }],
    interceptors,
    contextValues: peerContext,
    readMaxBytes,
    compressResponses: Boolean(options.compressMinBytes),
  });
  // Streaming gRPC calls (the runner's Work stream) without connect-node's pipeline.
  const streamFastPath =
    options.streamFastPath === false
      ? () => false
      : createStreamFastPath({
          services: [...options.mounts, { service: Health, impl: health.impl }],
          interceptors,
          contextValues: peerContext,
          readMaxBytes,
          compressResponses: Boolean(options.compressMinBytes),
        });
  const connectHandler = connectNodeAdapter({
    routes,
    contextValues: peerContext,
    readMaxBytes,
    // Off unless configured, as gRPC servers do by default (connect's default, gzip above 1 KiB,
    // cost the broker a twentieth of its CPU compressing Assign batches to runners on localhost).
    compressMinBytes: options.compressMinBytes ? options.compressMinBytes : Number.POSITIVE_INFINITY,
    interceptors,
    // An unknown field or enum name in JSON is refused, not dropped: a dropped filter value
    // (`states: ["JOB_STATE_BOGUS"]`) would silently widen a query to everything.
    jsonOptions: { ignoreUnknownFields: false },
    fallback(req, res) {
      if (req.url === "/metrics") {
        Promise.all([metrics.registry, ...(options.extraMetrics ?? [])].map((r) => r.metrics())).then(
          (texts) => {
            res.writeHead(200, { "content-type": metrics.registry.contentType });
            res.end(texts.join("\n"));
          },
          () => {
            res.writeHead(500);
            res.end();
          },
        );
        return;
      }
      if (req.url === "/healthz") {
        const ok = health.get("") === HealthStatus.SERVING;
        res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" });
        res.end(ok ? "SERVING\n" : "NOT_SERVING\n");
        return;
      }
      if (consoleFiles.handle(req, res)) return;
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found\n");
    },
  });

  const limits: ConnectionLimits = { ...defaultConnectionLimits, ...options.connectionLimits };
  const guard = createConnectionGuard(limits, {
    opened: () => metrics.connectionsOpen.inc(),
    released: () => metrics.connectionsOpen.dec(),
    cut: (reason) => metrics.connectionsCut.inc({ reason }),
  });
  const route =
    options.unaryFastPath === false
      ? connectHandler
      : (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
          if (!fastPath(req, res) && !streamFastPath(req, res)) connectHandler(req, res);
        };
  const handler = (
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ) => {
    if (req.httpVersionMajor === 1) guard.watchBody(req as http.IncomingMessage);
    route(req, res);
  };

  // Node applies headersTimeout and requestTimeout (answering 408) only to connections its HTTP/1.1
  // server tracks, and it starts tracking when that server emits "listening"; ours never listens
  // (the front socket hands it connections), so it is told below. Tracking is native and per parser:
  // no timer per request. test/security/connections.test.ts fails if a Node release changes this.
  const h1Timeouts = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: Math.min(1_000, Math.max(100, Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4)),
  };
  const settings: http2.Settings = { maxConcurrentStreams: options.maxConcurrentStreams ?? 1000 };
  const sessions = new Set<http2.Http2Session>();
  const sockets = new Set<net.Socket>();
  let h2: http2.Http2Server | http2.Http2SecureServer;
  let h1: http.Server | undefined;
  let front: net.Server;

  if (options.tls) {
    const secure = http2.createSecureServer(
      {
        cert: options.tls.cert,
        key: options.tls.key,
        allowHTTP1: true,
        settings,
        handshakeTimeout: Math.max(limits.firstByteTimeoutMs, limits.headersTimeoutMs),
      },
      handler,
    );
    // HTTP/1.1 over TLS runs inside the HTTP/2 server, which tracks its connections itself.
    Object.assign(secure, h1Timeouts);
    secure.on("connection", (socket: net.Socket) => {
      if (guard.admit(socket)) sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
    });
    h2 = secure;
    front = h2 as unknown as net.Server;
  } else {
    h2 = http2.createServer({ settings }, handler);
    h1 = http.createServer({ ...h1Timeouts, keepAliveTimeout: 5_000 }, handler);
    h1.emit("listening");
    front = net.createServer((socket) => {
      if (!guard.admit(socket)) return;
      // Small frames must not wait for delayed ACKs (HTTP/1.1 answers too; HTTP/2 sets it again).
      socket.setNoDelay(true);
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
      guard.awaitFirstBytes(socket);
      socket.once("data", (chunk: Buffer) => {
        guard.spoke(socket);
        socket.pause();
        socket.unshift(chunk);
        const n = Math.min(chunk.length, http2Preface.length);
        const isH2 = chunk.subarray(0, n).equals(http2Preface.subarray(0, n));
        if (isH2) {
          // Node's HTTP/2 session reads the socket's native handle and first takes what is
          // still buffered in the JS stream (the chunk unshifted above).
          h2.emit("connection", socket);
        } else {
          h1!.emit("connection", socket);
          socket.resume();
        }
      });
      socket.on("error", () => socket.destroy());
    });
  }
  h2.on("session", (s: http2.Http2Session) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
    s.on("error", () => {});
    guard.watchSession(s);
  });

  let port = options.port ?? 0;
  let closing: Promise<void> | undefined;
  const host = options.host ?? "127.0.0.1";

  return {
    get port() {
      return port;
    },
    get url() {
      const h = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
      return `${options.tls ? "https" : "http"}://${h.includes(":") ? `[${h}]` : h}:${port}`;
    },
    health,
    metrics,
    logger,
    listen() {
      return new Promise<void>((resolve, reject) => {
        front.once("error", reject);
        front.listen(port, host, () => {
          front.off("error", reject);
          const address = front.address();
          if (address && typeof address === "object") port = address.port;
          streamKeys.start();
          logger.info({ port, host, services: serviceNames, console: consoleFiles.size > 0 }, "listening");
          resolve();
        });
      });
    },
    setServing(serving) {
      health.setAll(serving ? HealthStatus.SERVING : HealthStatus.NOT_SERVING);
    },
    close(graceMs = 10_000) {
      closing ??= (async () => {
        health.setAll(HealthStatus.NOT_SERVING);
        streamKeys.close();
        const stopped = new Promise<void>((resolve) => front.close(() => resolve()));
        for (const s of sessions) s.close();
        // Stops the HTTP/1.1 connection checks and closes its idle keep-alive connections.
        h1?.close();
        guard.close();
        const timer = setTimeout(() => {
          for (const s of sessions) s.destroy();
          for (const sock of sockets) sock.destroy();
          h1?.closeAllConnections();
        }, graceMs);
        timer.unref();
        await stopped;
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}
