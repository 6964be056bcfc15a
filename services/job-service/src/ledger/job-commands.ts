// The ledger's commands on jobs (JobService): submit, cancel, retry, clone. Each commits, then
// enqueues what became ready or revokes what must stop.
import type { JobRow } from "../store/database.js";
import { readCloneSubmission, type CloneOptions } from "../domain/clone-job.js";
import { cancelJob, retryJob, type RetryJobResult } from "../domain/job-commands.js";
import { submitJob, type SubmitJobInput, type SubmitJobResult } from "../domain/submit-job.js";
import type { LedgerContext } from "./ledger-context.js";

export interface JobCommands {
  submitJob(input: SubmitJobInput): Promise<SubmitJobResult>;
  cancelJob(teamId: string, jobId: string): Promise<JobRow>;
  retryJob(teamId: string, jobId: string): Promise<RetryJobResult>;
  /** Submits the job's root tasks again as a new job, on their clusters or on `clusterSlug`. */
  cloneJob(teamId: string, jobId: string, options: CloneOptions): Promise<SubmitJobResult>;
}

export function createJobCommands(c: LedgerContext): JobCommands {
  const { store, clusters, relay, maxInputBytes, maxOpenTasks, now } = c;

  async function submit(input: SubmitJobInput): Promise<SubmitJobResult> {
    c.quotas?.admit(input.teamId);
    const result = await submitJob(store, clusters, input, { maxInputBytes, maxOpenTasks, now });
    await relay.enqueue(result.ready);
    return result;
  }

  return {
    submitJob: submit,

    async cloneJob(teamId: string, jobId: string, options: CloneOptions) {
      return submit(await readCloneSubmission(store, teamId, jobId, options));
    },

    async cancelJob(teamId: string, jobId: string): Promise<JobRow> {
      const { job, dispatched, canceled } = await cancelJob(store, teamId, jobId, now());
      if (c.spanExport && canceled.length > 0) void c.spanExport.stopped(canceled);
      // Always revoke: besides stopping running tasks, it makes the broker delete the stream
      // entries of the queued tasks now (and drop any it missed when they are claimed).
      const queued = dispatched.map((t) => ({ clusterId: t.cluster_id, taskId: t.id, attempt: t.attempt }));
      await c.revoke({ teamId, jobId, taskIds: [], reason: "job canceled" }, queued);
      return job;
    },

    async retryJob(teamId: string, jobId: string) {
      const result = await retryJob(store, teamId, jobId, maxOpenTasks, now());
      await relay.enqueue(result.ready);
      return result;
    },
  };
}
