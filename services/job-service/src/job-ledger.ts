// The ledger: job-service's record of jobs and tasks as one object over the database. Each command
// commits, then performs its effects outside the transaction (enqueue ready tasks, revoke leases).
// Handlers and tests use it; it needs no server. Its parts live in ledger/: commands on jobs,
// brokers' reports, reads.
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { ClusterResolver, Dispatcher, JobChanges, RunnerPresence } from "./domain/ports.js";
import { UNLIMITED_OPEN_TASKS } from "./domain/team-quota.js";
import { DEFAULT_MAX_INPUT_BYTES, DEFAULT_MAX_OUTPUT_BYTES } from "./domain/task-plan.js";
import { createBrokerReports, type BrokerReports } from "./ledger/broker-reports.js";
import { createJobCommands, type JobCommands } from "./ledger/job-commands.js";
import { createJobReads, type JobReads } from "./ledger/job-reads.js";
import { quietRevoke, type LedgerContext } from "./ledger/ledger-context.js";
import { createOutboxRelay, type OutboxRelay } from "./outbox/outbox-relay.js";
import { createStartTimeoutSweeper, type StartTimeoutSweeper } from "./scheduling/start-timeout-sweeper.js";
import type { JobsDatabase } from "./store/database.js";
import { createJobsStore } from "./store/jobs-store.js";
import type { SubmitQuotas } from "./submit-quotas.js";
import type { TaskMetrics } from "./task-metrics.js";
import type { SpanExport } from "./traces/span-export.js";

export interface JobLedgerOptions {
  db: Kysely<JobsDatabase>;
  clusters: ClusterResolver;
  dispatcher: Dispatcher;
  maxInputBytes?: number;
  /** Largest task output stored inline (default 1 MiB); a larger one fails its task. */
  maxOutputBytes?: number;
  sweepIntervalMs?: number;
  /** Age after which the sweeper re-sends an unacknowledged outbox row (default 5 s). */
  sweepAfterMs?: number;
  /** Job change notices for WatchJob (without: WatchJob polls). */
  notifier?: JobChanges;
  /** Per-team limits on submissions (none when unset). */
  quotas?: SubmitQuotas;
  /** Which runners are online (the broker's sessions), for why queued work waits; without it no reasons are given. */
  presence?: RunnerPresence;
  /** How often queued attempts are checked against their schedule-to-start deadline (default 1 s). */
  startTimeoutSweepMs?: number;
  /** The clock of delays, backoff and deadlines (tests inject one). */
  now?: () => Date;
  /** Draws retry jitter (default Math.random). */
  random?: () => number;
  logger?: Logger;
  /** Exports ended attempts' spans (tracing on). */
  spanExport?: SpanExport;
  /** Observes ended attempts' run times. */
  taskMetrics?: TaskMetrics;
}

/** What the ledger offers: the commands and reads behind JobService and TaskLedgerService. */
export interface JobLedger extends JobCommands, BrokerReports, JobReads {
  relay: OutboxRelay;
  startTimeouts: StartTimeoutSweeper;
  maxInputBytes: number;
}

export function createJobLedger(options: JobLedgerOptions): JobLedger {
  const { db, dispatcher, logger } = options;
  const now = options.now ?? (() => new Date());
  const relay = createOutboxRelay({ db, dispatcher, sweepIntervalMs: options.sweepIntervalMs, sweepAfterMs: options.sweepAfterMs, now: options.now, logger });
  const c: LedgerContext = {
    ...options,
    store: createJobsStore(db),
    relay,
    maxInputBytes: options.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES,
    maxOpenTasks: options.quotas?.limits.queuedTasks ?? UNLIMITED_OPEN_TASKS,
    maxOutputBytes: options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
    now,
    revoke: quietRevoke(dispatcher, logger),
  };
  const reports = createBrokerReports(c);
  const startTimeouts = createStartTimeoutSweeper({
    db,
    reportResults: (input) => reports.reportResults(input),
    enqueueReady: (ready) => relay.enqueueEnvelopes(ready),
    revokeQueued: (teamId, jobId, queued) => c.revoke({ teamId, jobId, taskIds: [], reason: "schedule-to-start timeout" }, queued),
    now,
    intervalMs: options.startTimeoutSweepMs,
    logger,
  });
  return { relay, startTimeouts, maxInputBytes: c.maxInputBytes, ...createJobCommands(c), ...reports, ...createJobReads(c) };
}
