// The ledger's reads (JobService): jobs, tasks, graphs, spans, changes as they happen, and why
// queued work waits.
import type { QueryJobsRequest } from "@corral/proto";
import { getJob, getTask, listTasks, queryJobs, type JobPage, type JobWithProgress, type TaskPage } from "../domain/job-queries.js";
import { getJobSpans, type JobSpansPage } from "../domain/traces/job-spans.js";
import { visualizeJob, type VisualizeOptions } from "../domain/visualize-job.js";
import { jobWaitReasons, type OnlineRunners, type WaitReasonRow } from "../domain/wait-reasons.js";
import { watchJob, type JobChange } from "../domain/watch-job.js";
import type { JobRow, TaskDetailRow } from "../store/database.js";
import { readyQueuedGroups } from "../store/waiting-repository.js";
import type { LedgerContext } from "./ledger-context.js";

export interface JobReads {
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

export function createJobReads(c: LedgerContext): JobReads {
  const { store, clusters } = c;

  async function onlineRunners(teamId: string): Promise<OnlineRunners | undefined> {
    if (!c.presence) return undefined;
    try {
      return await c.presence.online(teamId);
    } catch (err) {
      c.logger?.debug({ err }, "online runners unknown: the broker did not answer");
      return undefined;
    }
  }

  return {
    onlineRunners,

    async waitReasons(teamId: string, job: JobRow) {
      if (job.queued === 0 || job.canceled) return [];
      const groups = await readyQueuedGroups(c.db, job.id, c.now());
      if (groups.length === 0) return [];
      const online = await onlineRunners(teamId);
      return online ? jobWaitReasons(groups, online) : [];
    },

    getJob: (teamId: string, jobId: string) => getJob(store, teamId, jobId),
    queryJobs: (teamId: string, q: QueryJobsRequest) => queryJobs(store, teamId, q, clusters),
    listTasks: (teamId: string, q: Parameters<typeof listTasks>[2]) => listTasks(store, teamId, q),
    getTask: (teamId: string, jobId: string, taskId: string) => getTask(store, teamId, jobId, taskId),
    visualizeJob: (teamId: string, jobId: string, maxTasks?: number, options?: VisualizeOptions) =>
      visualizeJob(store, teamId, jobId, maxTasks, options),
    watchJob: (teamId: string, jobId: string, signal: AbortSignal) => watchJob(store, c.notifier, teamId, jobId, signal),
    getJobSpans: (teamId: string, jobId: string, pageSize: number, pageToken: string) => getJobSpans(store, teamId, jobId, pageSize, pageToken),
  };
}
