// A process runs one or more service components on one server: each service alone in production,
// all three together in `corral dev`. A component owns its stores and background loops.
import { setFlagsFromString } from "node:v8";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { ApiKeyVerifier } from "./auth.js";
import { createRegistryKeyVerifier } from "./key-verifier.js";
import type { RegistryClient } from "./registry-client.js";
import { createServer, type CorralServer, type ServiceMount } from "./server.js";
import type { ServiceConfig } from "./service-config.js";
import { createCloser, handleSignals } from "./shutdown.js";
import { createLogger } from "./logger.js";
import { tracingFromEnv } from "./tracing/tracing.js";

export interface ServiceComponent {
  name: string;
  mounts: ServiceMount[];
  /** The registry verifies keys against its own store; other components leave this unset. */
  verifier?: ApiKeyVerifier;
  /** The registry client the component resolves clusters with; keys are verified over it too. */
  registryClient?: RegistryClient;
  /** Metrics of the component's own, served on /metrics beside the RPC metrics. */
  metrics?: Registry;
  /** Throws when a store the component needs does not answer. */
  check(): Promise<void>;
  /** Lets the component ask for `check` again at once when its readiness changes between checks. */
  watchReadiness?(recheck: () => void): void;
  /** Starts background loops once the server listens. */
  start?(): void;
  /** Stops taking work (e.g. tells runners to go elsewhere) before the server closes. */
  drain?(graceMs: number): Promise<void>;
  /** Closes stores; called after the server stopped. Idempotent. */
  close(): Promise<void>;
}

export interface RunningProcess {
  server: CorralServer;
  components: ServiceComponent[];
  logger: Logger;
  close(): Promise<void>;
}

export interface RunOptions {
  name: string;
  config: ServiceConfig;
  /** Builds the components; `verifier` resolves keys for components that call other services. */
  build(context: { config: ServiceConfig; logger: Logger }): Promise<ServiceComponent[]>;
  /** Install SIGTERM/SIGINT handlers (default true). */
  signals?: boolean;
  logger?: Logger;
  /** How often readiness is re-checked (default 5 s). */
  checkIntervalMs?: number;
}

export async function runComponents(options: RunOptions): Promise<RunningProcess> {
  const { config } = options;
  const logger = options.logger ?? createLogger(options.name);
  // V8 reads this flag at each scavenge, so it may change after start-up.
  setFlagsFromString(config.parallelScavenge ? "--parallel-scavenge" : "--no-parallel-scavenge");
  const closer = createCloser(logger);
  // Registered first, so it closes last: spans of the components' last work are flushed.
  const tracing = tracingFromEnv(options.name, logger);
  if (tracing) closer.add("tracing", () => tracing.shutdown());
  const components = await options.build({ config, logger });
  for (const c of components) closer.add(`${c.name} stores`, () => c.close());

  const local = components.find((c) => c.verifier)?.verifier;
  const verifier =
    local ??
    createRegistryKeyVerifier({
      baseUrl: config.registryUrl,
      serviceKey: config.serviceKey,
      registry: components.find((c) => c.registryClient)?.registryClient,
      ttlMs: config.keyCacheMs,
    });
  const server = createServer({
    name: options.name,
    mounts: components.flatMap((c) => c.mounts),
    host: config.host,
    port: config.port,
    tls: config.tls,
    verifier,
    serviceKey: config.serviceKey,
    keyRecheckMs: config.keyCacheMs,
    authThrottle: { failuresPerSecond: config.authFailureRate, burst: config.authFailureBurst },
    trustForwardedFor: config.trustForwardedFor,
    logger,
    tracer: tracing?.tracer,
    extraMetrics: components.flatMap((c) => (c.metrics ? [c.metrics] : [])),
    maxConcurrentStreams: config.maxConcurrentStreams,
    readMaxBytes: config.maxMessageBytes,
    compressMinBytes: config.compressMinBytes,
    connectionLimits: config.connectionLimits,
    consoleDir: config.consoleDir,
  });
  await server.listen();
  closer.add("server", () => server.close(config.shutdownGraceMs));
  for (const c of components) {
    if (c.drain) closer.add(`${c.name} drain`, () => c.drain!(config.shutdownGraceMs));
  }

  const checkAll = async () => {
    try {
      await Promise.all(components.map((c) => c.check()));
      server.setServing(true);
      return true;
    } catch (err) {
      server.setServing(false);
      logger.warn({ err }, "not ready: a store does not answer");
      return false;
    }
  };
  await checkAll();
  for (const c of components) c.watchReadiness?.(() => void checkAll());
  for (const c of components) c.start?.();
  const timer = setInterval(() => void checkAll(), options.checkIntervalMs ?? 5_000);
  timer.unref();
  closer.add("readiness", () => clearInterval(timer));

  const running: RunningProcess = { server, components, logger, close: () => closer.close() };
  if (options.signals ?? true) handleSignals(() => running.close(), logger);
  return running;
}
