// CancelJob and RetryJob: each locks the job row (like every writer of a job) and adjusts its
// counters in the same transaction.
import { NotFoundError } from "@corral/server-kit";
import type { CanceledTaskRow, EnvelopeRow, JobRow } from "../store/database.js";
import type { JobsStore } from "./ports.js";
import { openTaskDeltas, quotaExceededError, UNLIMITED_OPEN_TASKS } from "./team-quota.js";
import { CANCELED, JobDeltas, QUEUED } from "./states.js";
import { JobState } from "@corral/proto";

export interface CancelJobResult {
  job: JobRow;
  /** Running tasks whose leases the broker must revoke. */
  runningTaskIds: string[];
  /** Queued tasks canceled now whose stream entries the broker deletes (dependencies met). */
  dispatched: CanceledTaskRow[];
  /** Every task canceled now (their spans end canceled). */
  canceled: string[];
}

/** Queued tasks never start, later subtasks are dropped (canceled), running ones are to be revoked. */
export async function cancelJob(store: JobsStore, teamId: string, jobId: string, now = new Date()): Promise<CancelJobResult> {
  return store.transaction(async (tx) => {
    const job = await tx.jobs.lockJob(teamId, jobId);
    if (!job) throw new NotFoundError("job", jobId);
    // A finished job has nothing to cancel; answering with it keeps CancelJob idempotent.
    if (job.state === JobState.COMPLETED || job.state === JobState.CANCELED) return { job, runningTaskIds: [], dispatched: [], canceled: [] };
    await tx.jobs.setJobCanceled(jobId, true);
    const deltas = new JobDeltas();
    const canceled = await tx.tasks.cancelQueuedTasks([jobId], now);
    deltas.move(jobId, QUEUED, CANCELED, canceled.length);
    await tx.outbox.deleteOfJob(jobId);
    await tx.jobs.settleJobs([jobId], deltas.all());
    await tx.usage.addOpenTasks(openTaskDeltas(deltas.all(), () => teamId), UNLIMITED_OPEN_TASKS);
    const runningTaskIds = await tx.tasks.runningTaskIdsOfJob(jobId);
    return {
      job: (await tx.jobs.findJob(teamId, jobId))!,
      runningTaskIds,
      dispatched: canceled.filter((c) => c.waiting_deps === 0),
      canceled: canceled.map((c) => c.id),
    };
  });
}

export interface RetryJobResult {
  job: JobRow;
  rescheduled: number;
  ready: EnvelopeRow[];
}

/**
 * Re-queues failed and canceled tasks with a new attempt (their retry budget renewed), drops the
 * subtasks of their earlier attempts, and resumes a canceled job.
 */
export async function retryJob(
  store: JobsStore,
  teamId: string,
  jobId: string,
  maxOpenTasks = UNLIMITED_OPEN_TASKS,
  now = new Date(),
): Promise<RetryJobResult> {
  return store.transaction(async (tx) => {
    const job = await tx.jobs.lockJob(teamId, jobId);
    if (!job) throw new NotFoundError("job", jobId);
    const { requeued, dropped } = await tx.tasks.requeueFailedTasks(jobId);
    const deltas = new JobDeltas();
    for (const r of requeued) deltas.move(jobId, r.old_state, QUEUED);
    for (const d of dropped) deltas.move(jobId, d.state, null, d.n);
    if (job.canceled) await tx.jobs.setJobCanceled(jobId, false);
    const ready = await tx.outbox.addReady(requeued.map((r) => r.id), now);
    await tx.jobs.settleJobs([jobId], deltas.all());
    // Re-queued tasks are open again: they count against the quota like a submission.
    const opened = openTaskDeltas(deltas.all(), () => teamId);
    if ((await tx.usage.addOpenTasks(opened, maxOpenTasks)).length > 0) {
      const open = (await tx.usage.readOpenTasks([teamId])).get(teamId) ?? 0;
      throw quotaExceededError(maxOpenTasks, open, opened.get(teamId) ?? 0, "re-queued");
    }
    return { job: (await tx.jobs.findJob(teamId, jobId))!, rescheduled: requeued.length, ready };
  });
}
