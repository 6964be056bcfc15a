// task-broker as a process component: Redis, the job-service ledger, the registry's cluster
// resolver and presence, and the mounts. Drain tells runners to go elsewhere before the server stops.
// Redis: REDIS_URL names one server; REDIS_CLUSTER_NODES (comma-separated `host:port` or
// `redis[s]://[user:password@]host:port` seeds) runs the broker on a Redis Cluster instead, and
// REDIS_URL is then not used. CORRAL_REDIS_PREFIX applies to both. CORRAL_PRESENCE_INTERVAL (20 s)
// is how often every connected runner is reported to the registry again. CORRAL_RESULT_STALL_TIMEOUT
// (30 s): results pending with none delivered to job-service for this long make the broker NOT_SERVING.
// CORRAL_MAX_SESSIONS_PER_TEAM (1,000) caps one team's open Work sessions on each replica.
// The job cache: CORRAL_JOB_CACHE_MAX_VALUE (4 MiB a value), CORRAL_JOB_CACHE_MAX_JOB_BYTES (64 MiB
// a job), CORRAL_JOB_CACHE_RETENTION (7 d: a job's cache unused this long is removed).
import { createRegistryClient, envDurationMs, envInt, type ServiceComponent, type ServiceConfig } from "@corral/server-kit";
import type { Logger } from "pino";
import { createBroker, type Broker } from "./broker.js";
import { createClusterResolverClient, createLedgerClient, createPresenceClient, createProgressClient, createResyncClient } from "./clients.js";
import type { PresenceReporter } from "./presence-publisher.js";
import { parseClusterNodes } from "./redis/connection.js";
import type { Ledger } from "./result-batcher.js";
import type { ClusterResolver } from "./session-hub.js";
import { createTaskLogClient } from "./task-logs/task-log-client.js";
import type { TaskLogSink } from "./task-logs/log-forwarder.js";

export interface BrokerComponent extends ServiceComponent {
  broker: Broker;
}

export function createBrokerComponent(
  config: ServiceConfig,
  options: {
    logger?: Logger;
    ledger?: Ledger;
    /** Where task logs go (default: job-service's TaskLogIngestService; none when `ledger` is given without it). */
    taskLogs?: TaskLogSink;
    clusters?: ClusterResolver;
    presence?: PresenceReporter;
    brokerId?: string;
    env?: Record<string, string | undefined>;
  } = {},
): BrokerComponent {
  const env = options.env ?? process.env;
  // One registry client: runners' cluster slugs resolve and API keys verify over it (runComponents).
  const registry = createRegistryClient({
    baseUrl: config.registryUrl,
    serviceKey: config.serviceKey,
    clusterTtlMs: 10_000,
    refreshAhead: false,
    clusterTimeoutMs: 10_000,
  });
  const broker = createBroker({
    redis: {
      url: config.redisUrl,
      keyPrefix: config.redisKeyPrefix,
      clusterNodes: parseClusterNodes(env.REDIS_CLUSTER_NODES),
    },
    ledger: options.ledger ?? createLedgerClient({ baseUrl: config.jobsUrl, serviceKey: config.serviceKey }),
    taskLogs: options.taskLogs ?? (options.ledger ? undefined : createTaskLogClient({ baseUrl: config.jobsUrl, serviceKey: config.serviceKey })),
    progress: options.ledger ? undefined : createProgressClient({ baseUrl: config.jobsUrl, serviceKey: config.serviceKey }),
    clusters: options.clusters ?? createClusterResolverClient(registry),
    presence: options.presence ?? createPresenceClient({ baseUrl: config.registryUrl, serviceKey: config.serviceKey }),
    brokerId: options.brokerId ?? env.CORRAL_BROKER_ID,
    leaseDurationMs: envDurationMs("CORRAL_LEASE_DURATION", 30_000, env),
    reapIntervalMs: envDurationMs("CORRAL_REAP_INTERVAL", 1_000, env),
    batchWindowMs: envDurationMs("CORRAL_RESULT_BATCH_WINDOW", 3, env),
    startReportDelayMs: envDurationMs("CORRAL_START_REPORT_DELAY", 0, env),
    helloTimeoutMs: envDurationMs("CORRAL_HELLO_TIMEOUT", 30_000, env),
    maxSessionsPerTeam: envInt("CORRAL_MAX_SESSIONS_PER_TEAM", 1_000, { min: 1, max: 10_000_000 }, env),
    presenceRefreshMs: envDurationMs("CORRAL_PRESENCE_INTERVAL", 20_000, env),
    resultStallTimeoutMs: envDurationMs("CORRAL_RESULT_STALL_TIMEOUT", 30_000, env),
    resync: options.ledger ? undefined : createResyncClient({ baseUrl: config.jobsUrl, serviceKey: config.serviceKey }),
    jobCache: {
      maxValueBytes: envInt("CORRAL_JOB_CACHE_MAX_VALUE", 4 * 1024 * 1024, { min: 1, max: 64 * 1024 * 1024 }, env),
      maxJobBytes: envInt("CORRAL_JOB_CACHE_MAX_JOB_BYTES", 64 * 1024 * 1024, { min: 1, max: 4 * 1024 * 1024 * 1024 - 1 }, env),
      retentionSec: Math.max(1, Math.round(envDurationMs("CORRAL_JOB_CACHE_RETENTION", 7 * 24 * 3600 * 1000, env) / 1000)),
    },
    logger: options.logger,
  });
  return {
    name: "task-broker",
    broker,
    mounts: broker.mounts,
    metrics: broker.metrics.registry,
    registryClient: registry,
    check: () => broker.ping(),
    watchReadiness: (recheck) => broker.onReadinessChange(recheck),
    start: () => broker.start(),
    drain: (graceMs) => broker.close(graceMs),
    close: () => broker.close(),
  };
}
