// job-service's wiring: as a process component (its database and migrations, the registry and
// broker clients) and, inside it, the service (the ledger over the store, the outbox sweeper, the
// LISTEN connection for WatchJob, and the RPC mounts, TaskLedgerService internal).
import { AutomationService, DispatchService, JobService, TaskLedgerService, TaskLogIngestService, TaskLogService } from "@corral/proto";
import {
  createDatabase,
  createPgChannel,
  createRegistryClient,
  createServiceClient,
  envDurationMs,
  envInt,
  envOptional,
  migrateToLatest,
  tracingFromEnv,
  type Tracing,
  pingDatabase,
  type ServiceComponent,
  type ServiceConfig,
  type ServiceMount,
} from "@corral/server-kit";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { createAutomationScheduler, type AutomationScheduler } from "./automation-scheduler.js";
import { createAutomationServiceImpl } from "./automation-service.js";
import { createBrokerDispatcher } from "./clients/broker-dispatcher.js";
import { createBrokerPresence } from "./clients/broker-presence.js";
import { createStorageLister } from "./clients/storage-lister.js";
import type { StoragePolicy } from "./domain/automations/automation-spec.js";
import { UNLIMITED_OPEN_TASKS } from "./domain/team-quota.js";
import { createJobsStore } from "./store/jobs-store.js";
import { createRegistryClusterResolver } from "./clients/registry-cluster-resolver.js";
import type { ClusterResolver, Dispatcher, RunnerPresence } from "./domain/ports.js";
import { DEFAULT_MAX_INPUT_BYTES, DEFAULT_MAX_OUTPUT_BYTES } from "./domain/task-plan.js";
import { createJobLedger, type JobLedger } from "./job-ledger.js";
import { createJobNotifier } from "./job-notifier.js";
import { createJobServiceImpl } from "./job-service.js";
import { JOBS_SCHEMA, type JobsDatabase } from "./store/database.js";
import { jobsMigrations } from "./store/migrations/index.js";
import { createSubmitQuotas, readSubmitQuotas, type SubmitQuotas } from "./submit-quotas.js";
import { createTaskLedgerServiceImpl } from "./task-ledger-service.js";
import { DEFAULT_TASK_LOG_LIMITS, type TaskLogLimits } from "./domain/task-logs/log-bounds.js";
import { createLogRetention } from "./domain/task-logs/log-retention.js";
import { createTaskLogIngestServiceImpl, createTaskLogServiceImpl } from "./task-log-service.js";
import { TASK_LOGS_CHANNEL } from "./store/task-log-repository.js";
import { createSpanExport } from "./traces/span-export.js";
import { createTaskMetrics, type TaskMetrics } from "./task-metrics.js";
import type { Registry } from "prom-client";

export interface JobsComponent extends ServiceComponent {
  jobs: JobServiceHandle;
}

export async function createJobsComponent(
  config: ServiceConfig,
  options: { logger?: Logger; clusters?: ClusterResolver; dispatcher?: Dispatcher; env?: Record<string, string | undefined> } = {},
): Promise<JobsComponent> {
  const env = options.env ?? process.env;
  const db = createDatabase<JobsDatabase>({ url: config.databaseUrl, schema: JOBS_SCHEMA, applicationName: "job-service" });
  try {
    await migrateToLatest(db, JOBS_SCHEMA, jobsMigrations);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  // One registry client: cluster slugs resolve and API keys verify over it (runComponents).
  const registry = createRegistryClient({ baseUrl: config.registryUrl, serviceKey: config.serviceKey });
  const clusters = options.clusters ?? createRegistryClusterResolver(registry);
  const dispatcher =
    options.dispatcher ??
    createBrokerDispatcher(
      // Submissions wait for the first enqueue; a slow broker must not hold them long, the outbox
      // sweeper re-sends what did not get through.
      createServiceClient(DispatchService, { baseUrl: config.brokerUrl, apiKey: config.serviceKey, timeoutMs: 5_000 }),
    );
  const jobs = createJobService({
    tracing: tracingFromEnv("job-service", options.logger),
    db,
    clusters,
    dispatcher,
    // Why queued work waits: the broker's sessions of the team (skipped with an injected dispatcher).
    presence: options.dispatcher
      ? undefined
      : createBrokerPresence(createServiceClient(DispatchService, { baseUrl: config.brokerUrl, apiKey: config.serviceKey, timeoutMs: 2_000 })),
    databaseUrl: config.databaseUrl,
    maxInputBytes: envInt("CORRAL_MAX_INPUT_BYTES", DEFAULT_MAX_INPUT_BYTES, { min: 1, max: 64 * 1024 * 1024 }, env),
    // Below the message limit (CORRAL_MAX_MESSAGE_BYTES, 8 MiB) with room for the rest of a result.
    maxOutputBytes: envInt("CORRAL_MAX_OUTPUT_BYTES", DEFAULT_MAX_OUTPUT_BYTES, { min: 1, max: 4 * 1024 * 1024 }, env),
    quotas: createSubmitQuotas(readSubmitQuotas(env)),
    automations: readAutomationSettings(env),
    taskLogs: readTaskLogSettings(env),
    logger: options.logger,
  });
  let closed: Promise<void> | undefined;
  return {
    name: "job-service",
    jobs,
    mounts: jobs.mounts,
    metrics: jobs.metrics,
    registryClient: registry,
    check: () => pingDatabase(db),
    start: () => jobs.start(),
    close: () =>
      (closed ??= (async () => {
        await jobs.close();
        await db.destroy();
      })()),
  };
}

/** The automation scheduler's settings (see docs/automations.md). */
export interface AutomationSettings {
  storage: StoragePolicy;
  /** A fire time older than this when a replica first sees it was missed (default 60 s). */
  misfireGraceMs: number;
  /** How often storage triggers list without a watch event (default 10 s). */
  storagePollMs: number;
  /** How long a file must be unchanged before it fires (default 1 s). */
  settleMs: number;
  /** Scheduler tick (default 1 s). */
  tickMs: number;
  /** Where env: secret references are read (default process.env). */
  env: Record<string, string | undefined>;
  /** The scheduler's clock (tests). */
  now?: () => Date;
  /** Run the scheduler loop (default true; tests that tick by hand turn it off). */
  run?: boolean;
}

export function readAutomationSettings(env: Record<string, string | undefined> = process.env): AutomationSettings {
  const list = (name: string) => (envOptional(name, env) ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
  return {
    storage: { directoryRoots: list("CORRAL_AUTOMATION_DIRS"), secretsDir: envOptional("CORRAL_AUTOMATION_SECRETS_DIR", env) ?? "/run/secrets" },
    misfireGraceMs: envDurationMs("CORRAL_AUTOMATION_MISFIRE_GRACE", 60_000, env),
    storagePollMs: envDurationMs("CORRAL_AUTOMATION_STORAGE_POLL", 10_000, env),
    settleMs: envDurationMs("CORRAL_AUTOMATION_SETTLE", 1_000, env),
    tickMs: envDurationMs("CORRAL_AUTOMATION_TICK", 1_000, env),
    env,
  };
}

/** How task logs are bounded and kept (see docs/observability.md). */
export interface TaskLogSettings extends TaskLogLimits {
  /** Logs of jobs that ended longer ago are deleted; 0 (default): kept as long as their task. */
  retentionMs: number;
}

export function readTaskLogSettings(env: Record<string, string | undefined> = process.env): TaskLogSettings {
  return {
    maxLines: envInt("CORRAL_TASK_LOG_MAX_LINES", DEFAULT_TASK_LOG_LIMITS.maxLines, { min: 2, max: 10_000_000 }, env),
    maxBytes: envInt("CORRAL_TASK_LOG_MAX_BYTES", DEFAULT_TASK_LOG_LIMITS.maxBytes, { min: 1024, max: 1024 * 1024 * 1024 }, env),
    retentionMs: envDurationMs("CORRAL_TASK_LOG_RETENTION", 0, env),
  };
}

export interface JobServiceOptions {
  db: Kysely<JobsDatabase>;
  clusters: ClusterResolver;
  dispatcher: Dispatcher;
  /** Largest task input in bytes (default 1 MiB). */
  maxInputBytes?: number;
  /** Largest task output stored inline in bytes (default 1 MiB). */
  maxOutputBytes?: number;
  /** How often the outbox sweeper runs (default 2 s). */
  sweepIntervalMs?: number;
  /** Age after which the sweeper re-sends an unacknowledged outbox row (default 5 s). */
  sweepAfterMs?: number;
  /**
   * Connection string of the jobs database, for the LISTEN connection behind WatchJob. Without it
   * WatchJob polls once a second.
   */
  databaseUrl?: string;
  /** Per-team submission quotas (none when unset). */
  quotas?: SubmitQuotas;
  /** Which runners are online, for why queued work waits (GetJob's wait_reasons; none without it). */
  presence?: RunnerPresence;
  /** Automation settings (default: readAutomationSettings() of an empty environment). */
  automations?: AutomationSettings;
  /** Task log bounds and retention (default 10,000 lines or 1 MiB per attempt, no retention). */
  taskLogs?: Partial<TaskLogSettings>;
  /** How often queued attempts are checked against their schedule-to-start deadline (default 1 s). */
  startTimeoutSweepMs?: number;
  /** The clock of delays, backoff and deadlines (tests inject one). */
  now?: () => Date;
  /** Draws retry jitter (default Math.random). */
  random?: () => number;
  logger?: Logger;
  /** When set, task attempt spans are exported as attempts end. */
  tracing?: Tracing;
  /** Task run times by identifier (default: a registry of its own, served with the component). */
  taskMetrics?: TaskMetrics;
}

export interface JobServiceHandle {
  mounts: ServiceMount[];
  /** Served on /metrics with the RPC metrics. */
  metrics: Registry;
  ledger: JobLedger;
  automations: AutomationScheduler;
  /** Starts the outbox sweeper and the automation scheduler. */
  start(): void;
  /** Stops the sweeper and the LISTEN connection; the database stays open (the caller owns it). Idempotent. */
  close(): Promise<void>;
  /** One sweep of the outbox; returns the number of tasks re-sent. */
  sweepOnce(): Promise<number>;
  /** Enqueues every queued, dispatchable task again (for when Redis lost its data). */
  requeueAll(): Promise<number>;
}

export function createJobService(options: JobServiceOptions): JobServiceHandle {
  const notifier = options.databaseUrl
    ? createJobNotifier({
        url: options.databaseUrl,
        onError: (err) => options.logger?.warn({ err }, "job change listener failed; reconnecting"),
      })
    : undefined;
  const spans = createJobsStore(options.db).spans;
  const spanExport = options.tracing
    ? createSpanExport({ tracing: options.tracing, currentAttempts: spans.currentAttempts, stoppedTasks: spans.stoppedSpanTasks, logger: options.logger })
    : undefined;
  const taskMetrics = options.taskMetrics ?? createTaskMetrics();
  const ledger = createJobLedger({ ...options, notifier, spanExport, taskMetrics });
  const logChanges = options.databaseUrl
    ? createPgChannel({
        url: options.databaseUrl,
        channel: TASK_LOGS_CHANNEL,
        applicationName: "job-service-logs-listen",
        onError: (err) => options.logger?.warn({ err }, "task log listener failed; reconnecting"),
      })
    : undefined;
  const logSettings = { ...DEFAULT_TASK_LOG_LIMITS, retentionMs: 0, ...options.taskLogs };
  // Followers wake on new lines and on job changes (the job's end ends their stream).
  const changes =
    logChanges && notifier
      ? {
          subscribe(jobId: string, onChange: () => void) {
            const offLines = logChanges.subscribe(jobId, onChange);
            const offJob = notifier.subscribe(jobId, onChange);
            return () => {
              offLines();
              offJob();
            };
          },
        }
      : undefined;
  const logs = { db: options.db, limits: { maxLines: logSettings.maxLines, maxBytes: logSettings.maxBytes }, changes };
  const logRetention = createLogRetention(logs, { retentionMs: logSettings.retentionMs, logger: options.logger });
  const settings = options.automations ?? readAutomationSettings({});
  const store = createJobsStore(options.db);
  const now = settings.now ?? (() => new Date());
  const scheduler = createAutomationScheduler({
    fire: {
      store,
      clusters: options.clusters,
      limits: { maxInputBytes: ledger.maxInputBytes, maxOpenTasks: options.quotas?.limits.queuedTasks ?? UNLIMITED_OPEN_TASKS },
      lister: createStorageLister({ settleMs: settings.settleMs, env: settings.env }),
      misfireGraceMs: settings.misfireGraceMs,
      storagePollMs: settings.storagePollMs,
    },
    enqueue: async (ready) => {
      await ledger.relay.enqueue(ready);
    },
    now,
    tickMs: settings.tickMs,
    watchDelayMs: settings.settleMs + 100,
    logger: options.logger,
  });
  const automationCtx = { store, clusters: options.clusters, maxInputBytes: ledger.maxInputBytes, storage: settings.storage, now };
  let closing: Promise<void> | undefined;
  return {
    mounts: [
      { service: JobService, impl: createJobServiceImpl(ledger) },
      { service: TaskLedgerService, impl: createTaskLedgerServiceImpl(ledger, spanExport), internal: true },
      { service: AutomationService, impl: createAutomationServiceImpl(automationCtx, () => scheduler.wake()) },
      { service: TaskLogService, impl: createTaskLogServiceImpl(logs) },
      { service: TaskLogIngestService, impl: createTaskLogIngestServiceImpl(logs, taskMetrics), internal: true },
    ],
    ledger,
    metrics: taskMetrics.registry,
    automations: scheduler,
    start: () => {
      ledger.relay.start();
      ledger.startTimeouts.start();
      if (settings.run !== false) scheduler.start();
      logRetention.start();
    },
    close() {
      closing ??= (async () => {
        const results = await Promise.allSettled([scheduler.close(), ledger.relay.close(), ledger.startTimeouts.close(), notifier?.close(), logChanges?.close(), logRetention.close()]);
        for (const r of results) if (r.status === "rejected") options.logger?.warn({ err: r.reason }, "job-service close step failed");
      })();
      return closing;
    },
    sweepOnce: () => ledger.relay.sweepOnce(),
    requeueAll: () => ledger.relay.requeueAll(),
  };
}
