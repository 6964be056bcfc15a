// JobService handlers that read jobs and tasks: get, progress, query, list and get tasks.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  GetJobProgressResponseSchema,
  GetJobResponseSchema,
  GetTaskResponseSchema,
  ListTasksResponseSchema,
  QueryJobsResponseSchema,
  type JobService,
} from "@corral/proto";
import { requireTeam } from "@corral/server-kit";
import { toJob, toJobWaitReason, toProgress, toStateCounts, toTask } from "../domain/convert.js";
import { isDue } from "../domain/scheduling.js";
import { QUEUED } from "../domain/states.js";
import type { JobLedger } from "../job-ledger.js";
import type { TaskDetailRow } from "../store/database.js";

export type JobReadHandlers = Pick<ServiceImpl<typeof JobService>, "getJob" | "getJobProgress" | "queryJobs" | "listTasks" | "getTask">;

export function jobReadHandlers(ledger: JobLedger): JobReadHandlers {
  /** The online runners, asked for only when a task could start but is queued (its wait reason names what is missing). */
  const onlineFor = async (teamId: string, tasks: readonly TaskDetailRow[], now: Date) =>
    tasks.some((t) => t.state === QUEUED && t.waiting_deps === 0 && isDue(t.not_before, now)) ? ledger.onlineRunners(teamId) : undefined;

  return {
    async getJob(req, ctx) {
      const teamId = requireTeam(ctx);
      const { job, progress } = await ledger.getJob(teamId, req.jobId);
      const out = toJob(job, progress);
      out.waitReasons = (await ledger.waitReasons(teamId, job)).map(toJobWaitReason);
      return create(GetJobResponseSchema, { job: out });
    },

    async getJobProgress(req, ctx) {
      const { job, progress } = await ledger.getJob(requireTeam(ctx), req.jobId);
      return create(GetJobProgressResponseSchema, {
        state: job.state,
        progress: toProgress(progress),
        tasksByState: toStateCounts(job),
      });
    },

    async queryJobs(req, ctx) {
      const page = await ledger.queryJobs(requireTeam(ctx), req);
      return create(QueryJobsResponseSchema, { jobs: page.jobs.map(({ progress_json, ...j }) => toJob(j, progress_json)), nextPageToken: page.nextPageToken });
    },

    async listTasks(req, ctx) {
      const teamId = requireTeam(ctx);
      const page = await ledger.listTasks(teamId, {
        jobId: req.jobId,
        parentId: req.parentId,
        pageSize: req.pageSize,
        pageToken: req.pageToken,
        includeInput: req.includeInput,
        includeOutput: req.includeOutput,
      });
      const now = new Date();
      const online = await onlineFor(teamId, page.tasks, now);
      return create(ListTasksResponseSchema, { tasks: page.tasks.map((t) => toTask(t, now, online)), nextPageToken: page.nextPageToken });
    },

    async getTask(req, ctx) {
      const teamId = requireTeam(ctx);
      const task = await ledger.getTask(teamId, req.jobId, req.taskId);
      const now = new Date();
      return create(GetTaskResponseSchema, { task: toTask(task, now, await onlineFor(teamId, [task], now)) });
    },
  };
}
