// Prometheus metrics: one registry per server, request counts and latency per method, and the
// connections the server holds and cuts.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/**
 * How a request's API key check ended: `ok`, `invalid` (unknown or revoked), `malformed` (refused
 * without a lookup), `throttled` (its address failed too often; refused without a lookup).
 */
export type KeyCheckResult = "ok" | "invalid" | "malformed" | "throttled";

export interface RpcMetrics {
  registry: Registry;
  keyChecks: Counter<"result">;
  requests: Counter<"service" | "method" | "code">;
  duration: Histogram<"service" | "method">;
  connectionsOpen: Gauge;
  /** Connections refused or closed by the guard, by `CutReason`. */
  connectionsCut: Counter<"reason">;
}

export function createRpcMetrics(registry = new Registry()): RpcMetrics {
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    keyChecks: new Counter({
      name: "corral_key_verifications_total",
      help: "API key checks of incoming calls, by result (ok, invalid, malformed, throttled)",
      labelNames: ["result"],
      registers: [registry],
    }),
    requests: new Counter({
      name: "corral_rpc_requests_total",
      help: "RPCs handled, by service, method and gRPC code",
      labelNames: ["service", "method", "code"],
      registers: [registry],
    }),
    duration: new Histogram({
      name: "corral_rpc_duration_seconds",
      help: "RPC handling time (unary calls; streams until they end)",
      labelNames: ["service", "method"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [registry],
    }),
    connectionsOpen: new Gauge({
      name: "corral_connections_open",
      help: "TCP connections the server holds (CORRAL_MAX_CONNECTIONS caps them)",
      registers: [registry],
    }),
    connectionsCut: new Counter({
      name: "corral_connections_cut_total",
      help: "Connections the server refused or closed for idleness or slowness, by reason",
      labelNames: ["reason"],
      registers: [registry],
    }),
  };
}
