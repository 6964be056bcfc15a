// The ledger: job-service's record of jobs and tasks as one object over the database. Each command
// commits, then performs its effects outside the transaction (enqueue ready tasks, revoke leases).
// Handlers and tests use it; it needs no server.
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { applyResults, type ApplyResultsInput, type ApplyResultsOutput, type Revocation } from "./domain/apply-results.js";
import { cancelJob, retryJob, type RetryJobResult } from "./domain/job-commands.js";
import { getJob, getTask, listTasks, queryJobs, type JobPage, type JobWithProgress, type TaskPage } from "./domain/job-queries.js";
import type { ClusterResolver, Dispatcher, JobChanges, OutboxKey, QueuedAttempt, RunnerPresence } from "./domain/ports.js";
import { jobWaitReasons, type OnlineRunners, type WaitReasonRow } from "./domain/wait-reasons.js";
import { readyQueuedGroups } from "./store/waiting-repository.js";
import { UNLIMITED_OPEN_TASKS } from "./domain/team-quota.js";
import { submitJob, type SubmitJobInput, type SubmitJobResult } from "./domain/submit-job.js";
import { DEFAULT_MAX_INPUT_BYTES, DEFAULT_MAX_OUTPUT_BYTES } from "./domain/task-plan.js";
import { visualizeJob, type VisualizeOptions } from "./domain/visualize-job.js";
import { watchJob, type JobChange } from "./domain/watch-job.js";
import { getJobSpans, type JobSpansPage } from "./domain/traces/job-spans.js";
import type { SpanExport } from "./traces/span-export.js";
import type { TaskMetrics } from "./task-metrics.js";
import { resyncDispatch } from "./outbox/dispatch-resync.js";
import { createOutboxRelay, type OutboxRelay } from "./outbox/outbox-relay.js";
import { createStartTimeoutSweeper, type StartTimeoutSweeper } from "./scheduling/start-timeout-sweeper.js";
import type { TaskDetailRow, JobRow, JobsDatabase } from "./store/database.js";
import { createJobsStore } from "./store/jobs-store.js";
import type { QueryJobsRequest, RunningProgress } from "@corral/proto";
import { runningProgressRows } from "./domain/running-progress.js";
import { readCloneSubmission, type CloneOptions } from "./domain/clone-job.js";
import { writeRunningProgress } from "./store/progress-repository.js";
import type { SubmitQuotas } from "./submit-quotas.js";

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
export interface JobLedger {
  relay: OutboxRelay;
  startTimeouts: StartTimeoutSweeper;
  maxInputBytes: number;
  submitJob(input: SubmitJobInput): Promise<SubmitJobResult>;
  /** Applies a broker's batch of results, then revokes the leases it says to. */
  reportResults(input: ApplyResultsInput): Promise<ApplyResultsOutput>;
  /** A broker's Redis lost its data: expire attempts leased before `lostSince`, re-send queued tasks. */
  resyncDispatch(reason: string, lostSince?: Date): Promise<{ expired: number; requeued: number }>;
  /** Progress of running tasks, as reported while they run; returns the entries written. */
  reportProgress(entries: readonly RunningProgress[]): Promise<number>;
  /** The broker has the tasks in its streams: their outbox rows go. */
  acknowledgeDispatch(keys: OutboxKey[]): Promise<number>;
  cancelJob(teamId: string, jobId: string): Promise<JobRow>;
  retryJob(teamId: string, jobId: string): Promise<RetryJobResult>;
  /** Submits the job's root tasks again as a new job, on their clusters or on `clusterSlug`. */
  cloneJob(teamId: string, jobId: string, options: CloneOptions): Promise<SubmitJobResult>;
  getJob(teamId: string, jobId: string): Promise<JobWithProgress>;
  /**
   * Why the job's queued tasks that could start do not (no online runner on their cluster, or none
   * serving their identifier). Advice: empty when the broker does not answer.
   */
  waitReasons(teamId: string, job: JobRow): Promise<WaitReasonRow[]>;
  /** The team's online runners, when there are queued tasks to explain and the broker answers. */
  onlineRunners(teamId: string): Promise<OnlineRunners | undefined>;
  queryJobs(teamId: string, q: QueryJobsRequest): Promise<JobPage>;
  listTasks(teamId: string, q: Parameters<typeof listTasks>[2]): Promise<TaskPage>;
  getTask(teamId: string, jobId: string, taskId: string): Promise<TaskDetailRow>;
  visualizeJob(teamId: string, jobId: string, maxTasks?: number, options?: VisualizeOptions): ReturnType<typeof visualizeJob>;
  watchJob(teamId: string, jobId: string, signal: AbortSignal): AsyncGenerator<JobChange>;
  getJobSpans(teamId: string, jobId: string, pageSize: number, pageToken: string): Promise<JobSpansPage>;
}

/** Asks the broker to cancel leases and drop queued entries; a failure is only logged. */
async function revokeQuietly(dispatcher: Dispatcher, logger: Logger | undefined, r: Revocation, queued: QueuedAttempt[]): Promise<void> {
  try {
    await dispatcher.revoke(r.teamId, r.jobId, r.taskIds, r.reason, queued);
  } catch (err) {
    // The runner's later result is stale or lands on a canceled task either way.
    logger?.warn({ err, jobId: r.jobId }, "revoking leases failed");
  }
}

export function createJobLedger(options: JobLedgerOptions): JobLedger {
  const { db, clusters, dispatcher, logger, notifier } = options;
  const store = createJobsStore(db);
  const maxInputBytes = options.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES;
  const maxOpenTasks = options.quotas?.limits.queuedTasks ?? UNLIMITED_OPEN_TASKS;
  const maxOutputBytes = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const relay: OutboxRelay = createOutboxRelay({
    db,
    dispatcher,
    sweepIntervalMs: options.sweepIntervalMs,
    sweepAfterMs: options.sweepAfterMs,
    now: options.now,
    logger,
  });
  const now = options.now ?? (() => new Date());

  const revoke = (r: Revocation, queued: QueuedAttempt[] = []) => revokeQuietly(dispatcher, logger, r, queued);

  const ledger: JobLedger = {
    relay,
    get startTimeouts() {
      return startTimeouts;
    },
    maxInputBytes,

    async submitJob(input: SubmitJobInput) {
      options.quotas?.admit(input.teamId);
      const result = await submitJob(store, clusters, input, { maxInputBytes, maxOpenTasks, now });
      await relay.enqueue(result.ready);
      return result;
    },

    async reportResults(input: ApplyResultsInput): Promise<ApplyResultsOutput> {
      const out = await applyResults(store, clusters, input, { maxInputBytes, maxOpenTasks, maxOutputBytes, now, random: options.random });
      for (const r of out.revocations) await revoke(r);
      options.taskMetrics?.observe(out.ended);
      // Not awaited: the broker's answer does not wait for the exporter's queue.
      if (options.spanExport && out.ended.length > 0) void options.spanExport.attempts(out.ended);
      if (options.spanExport && out.stopped.length > 0) void options.spanExport.stopped(out.stopped);
      return out;
    },

    async cloneJob(teamId: string, jobId: string, options: CloneOptions) {
      return this.submitJob(await readCloneSubmission(store, teamId, jobId, options));
    },

    async waitReasons(teamId: string, job: JobRow) {
      if (job.queued === 0 || job.canceled) return [];
      const groups = await readyQueuedGroups(db, job.id, now());
      if (groups.length === 0) return [];
      const online = await this.onlineRunners(teamId);
      return online ? jobWaitReasons(groups, online) : [];
    },

    async onlineRunners(teamId: string) {
      if (!options.presence) return undefined;
      try {
        return await options.presence.online(teamId);
      } catch (err) {
        logger?.debug({ err }, "online runners unknown: the broker did not answer");
        return undefined;
      }
    },

    reportProgress(entries: readonly RunningProgress[]) {
      return writeRunningProgress(db, runningProgressRows(entries));
    },

    resyncDispatch(reason: string, lostSince?: Date) {
      return resyncDispatch(
        { db, logger, reportResults: (input) => this.reportResults(input), requeueAll: () => relay.requeueAll() },
        reason,
        lostSince,
      );
    },

    acknowledgeDispatch(keys: OutboxKey[]): Promise<number> {
      return relay.acknowledge(keys);
    },

    async cancelJob(teamId: string, jobId: string): Promise<JobRow> {
      const { job, dispatched, canceled } = await cancelJob(store, teamId, jobId);
      if (options.spanExport && canceled.length > 0) void options.spanExport.stopped(canceled);
      // Always revoke: besides stopping running tasks, it makes the broker delete the stream
      // entries of the queued tasks now (and drop any it missed when they are claimed).
      const queued = dispatched.map((t) => ({ clusterId: t.cluster_id, taskId: t.id, attempt: t.attempt }));
      await revoke({ teamId, jobId, taskIds: [], reason: "job canceled" }, queued);
      return job;
    },

    async retryJob(teamId: string, jobId: string) {
      const result = await retryJob(store, teamId, jobId, maxOpenTasks, now());
      await relay.enqueue(result.ready);
      return result;
    },

    getJob: (teamId: string, jobId: string) => getJob(store, teamId, jobId),
    queryJobs: (teamId: string, q: QueryJobsRequest) => queryJobs(store, teamId, q, clusters),
    listTasks: (teamId: string, q: Parameters<typeof listTasks>[2]) => listTasks(store, teamId, q),
    getTask: (teamId: string, jobId: string, taskId: string) => getTask(store, teamId, jobId, taskId),
    visualizeJob: (teamId: string, jobId: string, maxTasks?: number, options?: VisualizeOptions) =>
      visualizeJob(store, teamId, jobId, maxTasks, options),
    watchJob: (teamId: string, jobId: string, signal: AbortSignal) => watchJob(store, notifier, teamId, jobId, signal),
    getJobSpans: (teamId: string, jobId: string, pageSize: number, pageToken: string) => getJobSpans(store, teamId, jobId, pageSize, pageToken),
  };
  const startTimeouts = createStartTimeoutSweeper({
    db,
    reportResults: (input) => ledger.reportResults(input),
    revokeQueued: (teamId, jobId, queued) => revoke({ teamId, jobId, taskIds: [], reason: "schedule-to-start timeout" }, queued),
    now,
    intervalMs: options.startTimeoutSweepMs,
    logger,
  });
  return ledger;
}
