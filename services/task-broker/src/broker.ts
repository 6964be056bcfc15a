// createBroker wires the task-broker: two Redis connections (broker-connections.ts), then each part
// once, in the order data flows: wake-ups → queue store → result batcher → lease holdings, result
// reporter, assignments → dispatcher → session hub → Work handler. Nothing is wired after
// construction; parts with options of their own are built by the small functions below it.
import { randomUUID } from "node:crypto";
import type { ServiceImpl } from "@connectrpc/connect";
import { DispatchService, JobCacheService, TaskBrokerService } from "@corral/proto";
import { createLogger, type ServiceMount } from "@corral/server-kit";
import type { Logger } from "pino";
import { createClusterBacklog } from "./cluster-backlog.js";
import { createDispatchService, sessionToJson, type BusRequest } from "./dispatch-service.js";
import { createDispatcher, type Dispatcher } from "./dispatch/dispatcher.js";
import { createWakeSubscriptions, type WakeSubscriptions } from "./dispatch/wake-subscriptions.js";
import { createWakeups, type Wakeups } from "./dispatch/wakeups.js";
import { createLeaseReaper, type LeaseReaper } from "./lease-reaper.js";
import { createBrokerMetrics, registerQueueDepth, taskLogCounts, type BrokerMetrics } from "./metrics.js";
import { createPresencePublisher, type PresencePublisher, type PresenceReporter } from "./presence-publisher.js";
import { openBrokerConnections, type BrokerConnections } from "./broker-connections.js";
import type { RedisClient, RedisTarget } from "./redis/connection.js";
import { createLeaseStore, type ExpiredLease, type LeaseStore } from "./redis/lease-store.js";
import { createQueueStore, type QueueStore } from "./redis/queue-store.js";
import { createReplicaBus, type ReplicaBus } from "./replica-bus.js";
import { ResultsStalledError } from "./errors.js";
import { createResultBatcher, type Ledger, type ResultBatcher } from "./result-batcher.js";
import type { RunnerSession } from "./runner-session.js";
import { createSessionHub, type ClusterResolver, type SessionHub, type SessionHubOptions } from "./session-hub.js";
import { createAssignments, type Assignments } from "./session/assignments.js";
import { createLeaseHoldings } from "./session/lease-holdings.js";
import { createProgressForwarder, type ProgressForwarder, type ProgressLedger } from "./session/progress-forwarder.js";
import { createResultReporter } from "./session/result-reporter.js";
import { createStoreMarkerWatch, type ResyncRequest, type StoreMarkerWatch } from "./store-marker.js";
import { maxQueuesPerSession } from "./task-identifier.js";
import { createWorkService } from "./work-service.js";
import { createJobCacheService } from "./job-cache-service.js";
import { createJobCacheStore, defaultJobCacheLimits, type JobCacheLimits } from "./redis/job-cache-store.js";
import { createTaskLogForwarder, type TaskLogForwarder, type TaskLogSink } from "./task-logs/log-forwarder.js";
import { reportAfterLogs } from "./task-logs/logs-before-results.js";

export interface BrokerOptions {
  /**
   * An ioredis connection or cluster (duplicated, never closed by the broker), or a URL and key
   * prefix, with Redis Cluster seed nodes when the broker runs on a Redis Cluster.
   */
  redis: RedisClient | RedisTarget;
  ledger: Ledger;
  /** Where runners' task log lines go (job-service's AppendTaskLogs); unset: runners are told not to send them. */
  taskLogs?: TaskLogSink;
  /** Where live progress of running tasks goes (TaskLedgerService.ReportProgress); without it, dropped. */
  progress?: ProgressLedger;
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
  /** The job cache's limits and retention (JobCacheService; defaults: 4 MiB a value, 64 MiB a job, 7 days). */
  jobCache?: Partial<JobCacheLimits>;
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
  const settings = brokerSettings(options);
  const { brokerId, logger, connectionName } = settings;
  const metrics = createBrokerMetrics();
  const connections = openBrokerConnections(options.redis, connectionName);
  const { redis, subscriber, channelPrefix } = connections;

  const wakeups = createWakeups();
  const queues = buildQueueStore(connections, wakeups);
  registerQueueDepth(metrics, () => queues.stats());
  const leases = createLeaseStore(redis, { doneTtlSec: 24 * 3600, channelPrefix });
  const readinessListeners = new Set<() => void>();
  const batcher = buildResultBatcher(options, settings, queues, metrics, readinessListeners);
  const presence = buildPresence(options, settings);
  const holdings = createLeaseHoldings();
  const logs = options.taskLogs ? createTaskLogForwarder({ sink: options.taskLogs, leases, logger, counts: taskLogCounts(metrics) }) : undefined;
  const results = createResultReporter({ leases, batcher, holdings, metrics, logger, onReleased: (s) => presence.updated(s) });
  const reporter = logs ? reportAfterLogs(results, logs) : results;
  const assignments = createAssignments({ holdings, reporter, presence, metrics, logger });
  const wakeSubscriptions = createWakeSubscriptions(subscriber, channelPrefix, wakeups);
  const dispatcher = buildDispatcher(options, settings, { queues, assignments, wakeups, wakeSubscriptions });
  const progress = createProgressForwarder({ ledger: options.progress, brokerId, logger });
  const hub = buildSessionHub(options, settings, { leases, holdings, reporter, progress, dispatcher, presence, metrics, logs });
  const reaper = buildReaper(options, settings, leases, (expired) => reporter.expired(expired));
  const bus = buildReplicaBus(connections, settings, hub);
  const markerWatch = options.resync
    ? createStoreMarkerWatch({ redis, brokerId, intervalMs: options.reapIntervalMs ?? 1_000, logger, resync: options.resync })
    : undefined;
  const startBus = busStarter(bus, logger);
  const parts: BrokerParts = { connections, hub, dispatcher, batcher, progress, reaper, markerWatch, presence, bus, logs };

  let state: BrokerState = "created";
  let closing: Promise<void> | undefined;
  return {
    brokerId,
    get state() {
      return state;
    },
    mounts: [
      ...buildMounts(options, settings, hub, queues, leases, bus, startBus),
      { service: JobCacheService, impl: createJobCacheService(createJobCacheStore(redis, { ...defaultJobCacheLimits, ...options.jobCache })) },
    ],
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
        await drainAndClose(parts, Date.now() + graceMs, logger);
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
      if (batcher.stalled) throw new ResultsStalledError(settings.resultStallTimeoutMs);
    },
    onReadinessChange(listener) {
      readinessListeners.add(listener);
    },
  };
}

/** The options every part shares, defaults applied. */
interface BrokerSettings {
  brokerId: string;
  logger: Logger;
  leaseDurationMs: number;
  heartbeatIntervalMs: number;
  resultStallTimeoutMs: number;
  connectionName: string;
}

function brokerSettings(options: BrokerOptions): BrokerSettings {
  const brokerId = options.brokerId ?? `broker-${randomUUID().slice(0, 8)}`;
  const leaseDurationMs = options.leaseDurationMs ?? 30_000;
  return {
    brokerId,
    logger: options.logger ?? createLogger("task-broker"),
    leaseDurationMs,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? Math.max(100, Math.floor(leaseDurationMs / 3)),
    resultStallTimeoutMs: options.resultStallTimeoutMs ?? 30_000,
    connectionName: `corral-broker-${brokerId}`,
  };
}

function buildQueueStore(connections: BrokerConnections, wakeups: Wakeups): QueueStore {
  return createQueueStore(connections.redis, {
    recordTtlSec: 7 * 24 * 3600,
    channelPrefix: connections.channelPrefix,
    // Readers in this process start at once (the Pub/Sub wake-up still reaches every replica).
    onQueued: wakeups.queued,
  });
}

function buildDispatcher(
  options: BrokerOptions,
  settings: BrokerSettings,
  parts: { queues: QueueStore; assignments: Assignments; wakeups: Wakeups; wakeSubscriptions: WakeSubscriptions },
): Dispatcher {
  const { leaseDurationMs } = settings;
  return createDispatcher({
    queues: parts.queues,
    brokerId: settings.brokerId,
    leaseDurationMs,
    pollIntervalMs: options.pollIntervalMs ?? 2_000,
    recoverIdleMs: Math.max(leaseDurationMs * 2, 10_000),
    logger: settings.logger,
    subscribe: parts.wakeSubscriptions.subscribe,
    unsubscribe: parts.wakeSubscriptions.unsubscribe,
    assignments: parts.assignments,
    wakeups: parts.wakeups,
  });
}

function buildSessionHub(
  options: BrokerOptions,
  settings: BrokerSettings,
  parts: Pick<SessionHubOptions, "leases" | "holdings" | "reporter" | "progress" | "presence" | "metrics" | "logs"> & { dispatcher: Dispatcher },
): SessionHub {
  return createSessionHub({
    brokerId: settings.brokerId,
    leaseDurationMs: settings.leaseDurationMs,
    heartbeatIntervalMs: settings.heartbeatIntervalMs,
    clusters: options.clusters,
    leases: parts.leases,
    holdings: parts.holdings,
    reporter: parts.reporter,
    progress: parts.progress,
    dispatch: parts.dispatcher,
    presence: parts.presence,
    metrics: parts.metrics,
    logger: settings.logger,
    logs: parts.logs,
    maxQueuesPerSession,
    maxSessionsPerTeam: options.maxSessionsPerTeam,
  });
}

function buildResultBatcher(
  options: BrokerOptions,
  settings: BrokerSettings,
  queues: QueueStore,
  metrics: BrokerMetrics,
  readinessListeners: ReadonlySet<() => void>,
): ResultBatcher {
  return createResultBatcher({
    ledger: options.ledger,
    brokerId: settings.brokerId,
    windowMs: options.batchWindowMs ?? 3,
    batchSize: options.batchSize ?? 500,
    ackFlushMs: 1_000,
    startHoldMs: options.startReportDelayMs ?? 0,
    enqueue: (tasks) => queues.enqueue(tasks),
    logger: settings.logger,
    metrics,
    stallTimeoutMs: settings.resultStallTimeoutMs,
    onStallChange: () => {
      for (const l of readinessListeners) l();
    },
  });
}

function buildPresence(options: BrokerOptions, settings: BrokerSettings): PresencePublisher {
  return createPresencePublisher({
    reporter: options.presence,
    brokerId: settings.brokerId,
    throttleMs: options.presenceThrottleMs ?? 2_000,
    refreshMs: options.presenceRefreshMs ?? 20_000,
    logger: settings.logger,
  });
}

function buildReaper(
  options: BrokerOptions,
  settings: BrokerSettings,
  leases: LeaseStore,
  onExpired: (expired: ExpiredLease[]) => void,
): LeaseReaper {
  return createLeaseReaper({
    leases,
    intervalMs: options.reapIntervalMs ?? 1_000,
    batchLimit: 1_000,
    reportTimeoutMs: Math.max(settings.leaseDurationMs, 10_000),
    logger: settings.logger,
    onExpired,
  });
}

/** Answers other replicas' requests from this replica's sessions (Revoke, ListSessions). */
function buildReplicaBus(connections: BrokerConnections, settings: BrokerSettings, hub: SessionHub): ReplicaBus {
  const { brokerId } = settings;
  return createReplicaBus({
    redis: connections.redis,
    subscriber: connections.subscriber,
    channelPrefix: connections.channelPrefix,
    brokerId,
    logger: settings.logger,
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
}

/** Starts the bus once (again after a failed start); resolves once it listens. */
function busStarter(bus: ReplicaBus, logger: Logger): () => Promise<void> {
  let busReady: Promise<void> | undefined;
  return () => {
    busReady ??= bus.start().catch((err: unknown) => {
      logger.error({ err }, "replica bus did not start");
      busReady = undefined;
      throw err;
    });
    return busReady;
  };
}

function buildMounts(
  options: BrokerOptions,
  settings: BrokerSettings,
  hub: SessionHub,
  queues: QueueStore,
  leases: LeaseStore,
  bus: ReplicaBus,
  startBus: () => Promise<void>,
): ServiceMount[] {
  const brokerService: Partial<ServiceImpl<typeof TaskBrokerService>> = {
    ...createWorkService(hub, settings.logger, { helloTimeoutMs: options.helloTimeoutMs }),
    getClusterBacklog: createClusterBacklog(options.clusters, queues, leases),
  };
  return [
    { service: TaskBrokerService, impl: brokerService },
    {
      service: DispatchService,
      impl: createDispatchService({
        queues,
        leases,
        fanout: async (body, timeoutMs) => {
          await startBus();
          return bus.request(body, timeoutMs);
        },
        brokerId: settings.brokerId,
        revokedTtlSec: 7 * 24 * 3600,
        fanoutTimeoutMs: 2_000,
      }),
      internal: true,
    },
  ];
}

/** What close() stops, in the order it stops them. */
interface BrokerParts {
  connections: BrokerConnections;
  hub: SessionHub;
  dispatcher: Dispatcher;
  batcher: ResultBatcher;
  progress: ProgressForwarder;
  reaper: LeaseReaper;
  markerWatch: StoreMarkerWatch | undefined;
  presence: PresencePublisher;
  bus: ReplicaBus;
  logs: TaskLogForwarder | undefined;
}

/** The drain: every step runs even when one before it failed; Redis closes last. */
async function drainAndClose(parts: BrokerParts, deadline: number, logger: Logger): Promise<void> {
  const { hub, batcher } = parts;
  async function step(name: string, fn: () => Promise<unknown> | unknown) {
    try {
      await fn();
    } catch (err) {
      logger.error({ err, step: name }, "broker close step failed");
    }
  }
  await step("drain sessions", () => hub.drain("broker is stopping"));
  await step("stop dispatch", () => parts.dispatcher.stop());
  // Runners answer Drain by sending what they have and ending their stream; each stream
  // closes once its results are acknowledged. Whatever is left at the deadline is cut.
  await step("wait for runners", () => hub.empty(deadline));
  await step("wait for reports", () => batcher.idle(deadline));
  await step("stop reaper", () => parts.reaper.stop());
  await step("stop marker watch", () => parts.markerWatch?.close());
  await step("send task logs", () => parts.logs?.close(Math.max(deadline, Date.now() + 1_000)));
  await step("close batcher", () => batcher.close());
  await step("close progress", () => parts.progress.close());
  await step("end streams", () => {
    for (const s of [...hub.sessions.values()]) hub.detach(s);
  });
  await step("presence", () => parts.presence.close());
  await step("bus", () => parts.bus.close());
  await step("redis", () => parts.connections.close());
}
