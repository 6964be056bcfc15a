// task-broker as a process component: Redis, the job-service ledger, the registry's cluster
// resolver and presence, and the mounts. Drain tells runners to go elsewhere before the server stops.
import { envDurationMs, type ServiceComponent, type ServiceConfig } from "@corral/server-kit";
import type { Logger } from "pino";
import { createBroker, type Broker } from "./broker.js";
import { createClusterResolverClient, createLedgerClient, createPresenceClient } from "./clients.js";
import type { PresenceReporter } from "./presence-publisher.js";
import type { Ledger } from "./result-batcher.js";
import type { ClusterResolver } from "./session-hub.js";

export interface BrokerComponent extends ServiceComponent {
  broker: Broker;
}

export function createBrokerComponent(
  config: ServiceConfig,
  options: {
    logger?: Logger;
    ledger?: Ledger;
    clusters?: ClusterResolver;
    presence?: PresenceReporter;
    brokerId?: string;
    env?: Record<string, string | undefined>;
  } = {},
): BrokerComponent {
  const env = options.env ?? process.env;
  const broker = createBroker({
    redis: { url: config.redisUrl, keyPrefix: config.redisKeyPrefix },
    ledger: options.ledger ?? createLedgerClient({ baseUrl: config.jobsUrl, serviceKey: config.serviceKey }),
    clusters:
      options.clusters ?? createClusterResolverClient({ baseUrl: config.registryUrl, serviceKey: config.serviceKey }),
    presence: options.presence ?? createPresenceClient({ baseUrl: config.registryUrl, serviceKey: config.serviceKey }),
    brokerId: options.brokerId ?? env.CORRAL_BROKER_ID,
    leaseDurationMs: envDurationMs("CORRAL_LEASE_DURATION", 30_000, env),
    reapIntervalMs: envDurationMs("CORRAL_REAP_INTERVAL", 1_000, env),
    batchWindowMs: envDurationMs("CORRAL_RESULT_BATCH_WINDOW", 3, env),
    logger: options.logger,
  });
  return {
    name: "task-broker",
    broker,
    mounts: broker.mounts,
    metrics: broker.metrics.registry,
    check: () => broker.ping(),
    start: () => broker.start(),
    drain: (graceMs) => broker.close(graceMs),
    close: () => broker.close(),
  };
}
