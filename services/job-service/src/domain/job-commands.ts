// CancelJob and RetryJob: each locks the job row (like every writer of a job) and adjusts its
// counters in the same transaction.
import { NotFoundError } from "@corral/server-kit";
import type { Kysely } from "kysely";
import type { JobsDatabase } from "../store/database.js";
import {
  findJob,
  lockJob,
  setJobCanceled,
  settleJobs,
  type JobRow,
} from "../store/job-repository.js";
import { deleteOutboxOfJob, enqueueReady, type EnvelopeRow } from "../store/outbox-repository.js";
import { cancelQueuedTasks, requeueFailedTasks, runningTaskIdsOfJob, type CanceledTask } from "../store/task-repository.js";
import { addOpenTasks, readOpenTasks } from "../store/team-usage-repository.js";
import { openTaskDeltas, quotaExceededError, UNLIMITED_OPEN_TASKS } from "./team-quota.js";
import { CANCELED, JobDeltas, QUEUED } from "./states.js";
import { JobState } from "@corral/proto";

export interface CancelJobResult {
  job: JobRow;
  /** Running tasks whose leases the broker must revoke. */
  runningTaskIds: string[];
  /** Queued tasks canceled now whose stream entries the broker deletes (dependencies met). */
  dispatched: CanceledTask[];
}

/** Queued tasks never start, later subtasks are dropped (canceled), running ones are to be revoked. */
export async function cancelJob(db: Kysely<JobsDatabase>, teamId: string, jobId: string): Promise<CancelJobResult> {
  return db.transaction().execute(async (tx) => {
    const job = await lockJob(tx, teamId, jobId);
    if (!job) throw new NotFoundError("job", jobId);
    // A finished job has nothing to cancel; answering with it keeps CancelJob idempotent.
    if (job.state === JobState.COMPLETED || job.state === JobState.CANCELED) return { job, runningTaskIds: [], dispatched: [] };
    await setJobCanceled(tx, jobId, true);
    const deltas = new JobDeltas();
    const canceled = await cancelQueuedTasks(tx, [jobId]);
    deltas.move(jobId, QUEUED, CANCELED, canceled.length);
    await deleteOutboxOfJob(tx, jobId);
    await settleJobs(tx, [jobId], deltas.all());
    await addOpenTasks(tx, openTaskDeltas(deltas.all(), () => teamId), UNLIMITED_OPEN_TASKS);
    const runningTaskIds = await runningTaskIdsOfJob(tx, jobId);
    return { job: (await findJob(tx, teamId, jobId))!, runningTaskIds, dispatched: canceled.filter((c) => c.waiting_deps === 0) };
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
  db: Kysely<JobsDatabase>,
  teamId: string,
  jobId: string,
  maxOpenTasks = UNLIMITED_OPEN_TASKS,
): Promise<RetryJobResult> {
  return db.transaction().execute(async (tx) => {
    const job = await lockJob(tx, teamId, jobId);
    if (!job) throw new NotFoundError("job", jobId);
    const { requeued, dropped } = await requeueFailedTasks(tx, jobId);
    const deltas = new JobDeltas();
    for (const r of requeued) deltas.move(jobId, r.old_state, QUEUED);
    for (const d of dropped) deltas.move(jobId, d.state, null, d.n);
    if (job.canceled) await setJobCanceled(tx, jobId, false);
    const ready = await enqueueReady(tx, requeued.map((r) => r.id));
    await settleJobs(tx, [jobId], deltas.all());
    // Re-queued tasks are open again: they count against the quota like a submission.
    const opened = openTaskDeltas(deltas.all(), () => teamId);
    if ((await addOpenTasks(tx, opened, maxOpenTasks)).length > 0) {
      const open = (await readOpenTasks(tx, [teamId])).get(teamId) ?? 0;
      throw quotaExceededError(maxOpenTasks, open, opened.get(teamId) ?? 0, "re-queued");
    }
    return { job: (await findJob(tx, teamId, jobId))!, rescheduled: requeued.length, ready };
  });
}
