// createBroker wires the task-broker: two Redis connections (commands, and a subscriber for wake-ups
// and replica requests) whatever the number of runners, then each part once, in the order data
// flows: wake-ups → queue store → result batcher → lease holdings, result reporter, assignments →
// dispatcher → session hub → Work handler. Nothing is wired after construction.
import { randomUUID } from "node:crypto";
import { DispatchService, TaskBrokerService } from "@corral/proto";
import { createLogger, type ServiceMount } from "@corral/server-kit";
import type { Logger } from "pino";
import { createDispatchService, sessionToJson, type BusRequest } from "./dispatch-service.js";
import { createDispatcher } from "./dispatch/dispatcher.js";
import { createWakeups } from "./dispatch/wakeups.js";
import { createLeaseReaper } from "./lease-reaper.js";
import { createBrokerMetrics, type BrokerMetrics } from "./metrics.js";
import { createPresencePublisher, type PresenceReporter } from "./presence-publisher.js";
import { createRedisTemplate, duplicateConnection, isRedisClient, type RedisClient, type RedisTarget } from "./redis/connection.js";
import { wakeChannel } from "./redis/keys.js";
import { createLeaseStore } from "./redis/lease-store.js";
import { createQueueStore } from "./redis/queue-store.js";
import { createReplicaBus } from "./replica-bus.js";
import { ResultsStalledError } from "./errors.js";
import { createResultBatcher, type Ledger } from "./result-batcher.js";
import type { RunnerSession } from "./runner-session.js";
import { createSessionHub, type ClusterResolver } from "./session-hub.js";
import { createAssignments } from "./session/assignments.js";
import { createLeaseHoldings } from "./session/lease-holdings.js";
import { createResultReporter } from "./session/result-reporter.js";
import { createStoreMarkerWatch, type ResyncRequest } from "./store-marker.js";
import { maxQueuesPerSession } from "./task-identifier.js";
import { createWorkService } from "./work-service.js";

export interface BrokerOptions {
  /**
   * An ioredis connection or cluster (duplicated, never closed by the broker), or a URL and key
   * prefix, with Redis Cluster seed nodes when the broker runs on a Redis Cluster.
   */
  redis: RedisClient | RedisTarget;
  ledger: Ledger;
  clusters: ClusterResolver;
  presence?: PresenceReporter;
  /** Names this replica in leases, sessions and Redis connection names (default: random). */
  brokerId?: string;
  /** Default 30 s. */
  leaseDurationMs?: number;
  /** What runners are told to use; default a third of the lease duration. */
  heartbeatIntervalMs?: number;
  /** Default 1 s. */
  reapIntervalMs?: number;
  /** Results wait at most this long for company (default 3 ms). */
  batchWindowMs?: number;
  /**
   * A start report waits this long for its task's end, so a short task costs job-service one
   * write (default 0: starts are reported at once).
   */
  startReportDelayMs?: number;
  /** A Work stream must send Hello within this long, or it is ended (default 30 s). */
  helloTimeoutMs?: number;
  /**
   * Results pending with none delivered to job-service for this long make the broker not ready
   * (default 30 s, `CORRAL_RESULT_STALL_TIMEOUT`).
   */
  resultStallTimeoutMs?: number;
  /** Most open Work sessions of one team on this replica (default 1,000): RESOURCE_EXHAUSTED beyond. */
  maxSessionsPerTeam?: number;
  /** Results per ReportResults call (default 500). */
  batchSize?: number;
  /** A dispatch group with credit reads again after this long without a wake-up (default 2 s). */
  pollIntervalMs?: number;
  /** Busy-slot presence updates per session at most this often (default 2 s). */
  presenceThrottleMs?: number;
  /** Every connected runner is reported to the registry again this often (default 20 s). */
  presenceRefreshMs?: number;
  /**
   * Asks job-service to resynchronise when Redis lost its data (TaskLedgerService.ResyncDispatch);
   * without it a wipe is not watched for.
   */
  resync?: (request: ResyncRequest) => Promise<void>;
  logger?: Logger;
}

/** Lifecycle: `running` until close() starts; `draining` while runners finish reporting. */
export type BrokerState = "created" | "running" | "draining" | "stopped";

export interface Broker {
  readonly brokerId: string;
  readonly state: BrokerState;
  mounts: ServiceMount[];
  /** The broker's Prometheus registry (`metrics.registry`) for the server to merge. */
  metrics: BrokerMetrics;
  /** Starts the reaper and the replica bus; Work and Enqueue are served from construction on. */
  start(): void;
  /** Resolves once the replica bus listens (Revoke and ListSessions reach this replica). */
  ready(): Promise<void>;
  /**
   * Drain: send Drain to every runner, stop assigning, wait up to `graceMs` for runners to end
   * their streams and for in-flight reports to be durable, then close streams and Redis. Idempotent.
   */
  close(graceMs?: number): Promise<void>;
  /** Redis connection name prefix (`CLIENT LIST` shows `<prefix>:cmd` and `<prefix>:sub`). */
  readonly connectionName: string;
  /** Local runner sessions (for tests and operators). */
  sessions(): RunnerSession[];
  /** Dispatch groups with a loop on this replica. */
  readonly dispatchGroups: number;
  /** One reaper pass now. */
  reapNow(): Promise<number>;
  /** Throws when Redis does not answer, or results are not being delivered (readiness). */
  ping(): Promise<void>;
  /** Calls `listener` when readiness may have changed without a ping (results stall or flow again). */
  onReadinessChange(listener: () => void): void;
}

export function createBroker(options: BrokerOptions): Broker {
  const brokerId = options.brokerId ?? `broker-${randomUUID().slice(0, 8)}`;
  const logger = options.logger ?? createLogger("task-broker");
  const leaseDurationMs = options.leaseDurationMs ?? 30_000;
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? Math.max(100, Math.floor(leaseDurationMs / 3));
  const connectionName = `corral-broker-${brokerId}`;
  const metrics = createBrokerMetrics();

  const ownsBase = !isRedisClient(options.redis);
  // Only a template for the connections below; it never connects itself.
  const base: RedisClient = isRedisClient(options.redis) ? options.redis : createRedisTemplate(options.redis);
  const own = (suffix: string, extra: { enableAutoPipelining?: boolean } = {}) => {
    const c = duplicateConnection(base, `${connectionName}:${suffix}`, extra);
    c.on("error", () => {});
    return c;
  };
  // Concurrent sessions' Lua calls in one tick go out as one pipeline.
  const redis = own("cmd", { enableAutoPipelining: true });
  const subscriber = own("sub");
  const channelPrefix = base.options.keyPrefix ?? "";

  const wakeups = createWakeups();
  const queues = createQueueStore(redis, {
    recordTtlSec: 7 * 24 * 3600,
    channelPrefix,
    // Readers in this process start at once (the Pub/Sub wake-up still reaches every replica).
    onQueued: wakeups.queued,
  });
  const leases = createLeaseStore(redis, { doneTtlSec: 24 * 3600 });
  const resultStallTimeoutMs = options.resultStallTimeoutMs ?? 30_000;
  const readinessListeners = new Set<() => void>();
  const batcher = createResultBatcher({
    ledger: options.ledger,
    brokerId,
    windowMs: options.batchWindowMs ?? 3,
    batchSize: options.batchSize ?? 500,
    ackFlushMs: 1_000,
    startHoldMs: options.startReportDelayMs ?? 0,
    enqueue: (tasks) => queues.enqueue(tasks),
    logger,
    metrics,
    stallTimeoutMs: resultStallTimeoutMs,
    onStallChange: () => {
      for (const l of readinessListeners) l();
    },
  });
  const presence = createPresencePublisher({
    reporter: options.presence,
    brokerId,
    throttleMs: options.presenceThrottleMs ?? 2_000,
    refreshMs: options.presenceRefreshMs ?? 20_000,
    logger,
  });
  const holdings = createLeaseHoldings();
  const reporter = createResultReporter({ leases, batcher, holdings, metrics, logger, onReleased: (s) => presence.updated(s) });
  const assignments = createAssignments({ holdings, reporter, presence, metrics, logger });
  /** wake channel → cluster id, for the clusters this replica dispatches. */
  const wakeChannels = new Map<string, string>();
  const dispatcher = createDispatcher({
    queues,
    brokerId,
    leaseDurationMs,
    pollIntervalMs: options.pollIntervalMs ?? 2_000,
    recoverIdleMs: Math.max(leaseDurationMs * 2, 10_000),
    logger,
    async subscribe(clusterId) {
      const channel = wakeChannel(channelPrefix, clusterId);
      if (wakeChannels.has(channel)) return;
      wakeChannels.set(channel, clusterId);
      await subscriber.subscribe(channel);
    },
    unsubscribe(clusterId) {
      const channel = wakeChannel(channelPrefix, clusterId);
      if (!wakeChannels.delete(channel)) return;
      subscriber.unsubscribe(channel).catch(() => {});
    },
    assignments,
    wakeups,
  });
  const hub = createSessionHub({
    brokerId,
    leaseDurationMs,
    heartbeatIntervalMs,
    clusters: options.clusters,
    leases,
    holdings,
    reporter,
    dispatch: dispatcher,
    presence,
    metrics,
    logger,
    maxQueuesPerSession,
    maxSessionsPerTeam: options.maxSessionsPerTeam,
  });
  subscriber.on("message", (channel: string, queue: string) => {
    const clusterId = wakeChannels.get(channel);
    if (clusterId !== undefined) wakeups.queued(clusterId, queue);
  });
  const reaper = createLeaseReaper({
    leases,
    intervalMs: options.reapIntervalMs ?? 1_000,
    batchLimit: 1_000,
    reportTimeoutMs: Math.max(leaseDurationMs, 10_000),
    logger,
    onExpired: (expired) => reporter.expired(expired),
  });
  const bus = createReplicaBus({
    redis,
    subscriber,
    channelPrefix,
    brokerId,
    logger,
    async handle(body) {
      const req = body as BusRequest;
      if (req.type === "revoke") return hub.revokeLocal(req);
      if (req.type === "sessions") {
        return [...hub.sessions.values()]
          .filter((s) => (!req.clusterId || s.cluster.id === req.clusterId) && (!req.teamId || s.teamId === req.teamId))
          .map((s) => sessionToJson(s, brokerId));
      }
      return null;
    },
  });

  const markerWatch = options.resync
    ? createStoreMarkerWatch({ redis, brokerId, intervalMs: options.reapIntervalMs ?? 1_000, logger, resync: options.resync })
    : undefined;

  let state: BrokerState = "created";
  let busReady: Promise<void> | undefined;
  let closing: Promise<void> | undefined;

  const startBus = () => {
    busReady ??= bus.start().catch((err: unknown) => {
      logger.error({ err }, "replica bus did not start");
      busReady = undefined;
      throw err;
    });
    return busReady;
  };

  const mounts: ServiceMount[] = [
    { service: TaskBrokerService, impl: createWorkService(hub, logger, { helloTimeoutMs: options.helloTimeoutMs }) },
    {
      service: DispatchService,
      impl: createDispatchService({
        queues,
        fanout: async (body, timeoutMs) => {
          await startBus();
          return bus.request(body, timeoutMs);
        },
        brokerId,
        revokedTtlSec: 7 * 24 * 3600,
        fanoutTimeoutMs: 2_000,
      }),
      internal: true,
    },
  ];

  async function step(name: string, fn: () => Promise<unknown> | unknown) {
    try {
      await fn();
    } catch (err) {
      logger.error({ err, step: name }, "broker close step failed");
    }
  }

  return {
    brokerId,
    get state() {
      return state;
    },
    mounts,
    metrics,
    connectionName,
    start() {
      if (state !== "created") return;
      state = "running";
      reaper.start();
      markerWatch?.start();
      void startBus().catch(() => {});
    },
    ready() {
      return startBus();
    },
    close(graceMs = 10_000) {
      closing ??= (async () => {
        state = "draining";
        const deadline = Date.now() + graceMs;
        await step("drain sessions", () => hub.drain("broker is stopping"));
        await step("stop dispatch", () => dispatcher.stop());
        // Runners answer Drain by sending what they have and ending their stream; each stream
        // closes once its results are acknowledged. Whatever is left at the deadline is cut.
        await step("wait for runners", () => hub.empty(deadline));
        await step("wait for reports", () => batcher.idle(deadline));
        await step("stop reaper", () => reaper.stop());
        await step("stop marker watch", () => markerWatch?.close());
        await step("close batcher", () => batcher.close());
        await step("end streams", () => {
          for (const s of [...hub.sessions.values()]) hub.detach(s);
        });
        await step("presence", () => presence.close());
        await step("bus", () => bus.close());
        await step("redis", async () => {
          await Promise.allSettled([redis.quit(), subscriber.quit()]);
          if (ownsBase) base.disconnect();
        });
        state = "stopped";
      })();
      return closing;
    },
    sessions() {
      return [...hub.sessions.values()];
    },
    get dispatchGroups() {
      return dispatcher.groupCount;
    },
    reapNow() {
      return reaper.reapOnce();
    },
    async ping() {
      await redis.ping();
      if (batcher.stalled) throw new ResultsStalledError(resultStallTimeoutMs);
    },
    onReadinessChange(listener) {
      readinessListeners.add(listener);
    },
  };
}
