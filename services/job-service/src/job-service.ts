// corral.jobs.v1.JobService handlers: translate proto to the domain and back; the caller's team
// scopes everything.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  CancelJobResponseSchema,
  CloneJobResponseSchema,
  GraphDirection,
  GraphTheme,
  GetJobProgressResponseSchema,
  GetJobResponseSchema,
  GetTaskResponseSchema,
  type JobService,
  ListTasksResponseSchema,
  QueryJobsResponseSchema,
  RetryJobResponseSchema,
  SubmitJobResponseSchema,
  VisualizeJobResponseSchema,
  WatchJobResponseSchema,
  GetJobSpansResponseSchema,
} from "@corral/proto";
import { callerTrace, keyRevocation, requireTeam } from "@corral/server-kit";
import { toJob, toJobWaitReason, toProgress, toStateCounts, toTask, toTaskSpan } from "./domain/convert.js";
import { isDue } from "./domain/scheduling.js";
import { QUEUED } from "./domain/states.js";
import type { TaskDetailRow } from "./store/database.js";
import type { JobLedger } from "./job-ledger.js";

export function createJobServiceImpl(ledger: JobLedger): ServiceImpl<typeof JobService> {
  /** The online runners, asked for only when a task could start but is queued (its wait reason names what is missing). */
  const onlineFor = async (teamId: string, tasks: readonly TaskDetailRow[], now: Date) =>
    tasks.some((t) => t.state === QUEUED && t.waiting_deps === 0 && isDue(t.not_before, now)) ? ledger.onlineRunners(teamId) : undefined;

  return {
    async submitJob(req, ctx) {
      const teamId = requireTeam(ctx);
      const { job, created } = await ledger.submitJob({
        teamId,
        name: req.name,
        clusterSlug: req.clusterSlug,
        tasks: req.tasks,
        idempotencyKey: req.idempotencyKey,
        taskDefaults: req.taskDefaults,
        trace: callerTrace(ctx),
      });
      return create(SubmitJobResponseSchema, { job: toJob(job), created });
    },

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

    async cancelJob(req, ctx) {
      const teamId = requireTeam(ctx);
      await ledger.cancelJob(teamId, req.jobId);
      // Read again with its progress: what the job had done when it was canceled.
      const { job, progress } = await ledger.getJob(teamId, req.jobId);
      return create(CancelJobResponseSchema, { job: toJob(job, progress) });
    },

    async retryJob(req, ctx) {
      const { job, rescheduled } = await ledger.retryJob(requireTeam(ctx), req.jobId);
      return create(RetryJobResponseSchema, { job: toJob(job), rescheduledCount: rescheduled });
    },

    async cloneJob(req, ctx) {
      const { job } = await ledger.cloneJob(requireTeam(ctx), req.jobId, { clusterSlug: req.clusterSlug, name: req.name });
      return create(CloneJobResponseSchema, { job: toJob(job) });
    },

    async visualizeJob(req, ctx) {
      const g = await ledger.visualizeJob(requireTeam(ctx), req.jobId, req.maxTasks, {
        direction: req.direction === GraphDirection.LEFT_RIGHT ? "right" : "down",
        theme: req.theme === GraphTheme.DARK ? "dark" : "light",
        includeJobName: req.includeJobName,
      });
      return create(VisualizeJobResponseSchema, { svg: g.svg, mermaid: g.mermaid, dot: g.dot, summarized: g.summarized });
    },

    async getJobSpans(req, ctx) {
      const page = await ledger.getJobSpans(requireTeam(ctx), req.jobId, req.pageSize, req.pageToken);
      return create(GetJobSpansResponseSchema, {
        traceId: page.traceId,
        parentSpanId: page.job.trace_parent_span_id ?? "",
        spans: page.spans.map(toTaskSpan),
        nextPageToken: page.nextPageToken,
      });
    },

    async *watchJob(req, ctx) {
      const teamId = requireTeam(ctx);
      // A revoked key stops the watch (and its listener) at once; the server ends the call with
      // UNAUTHENTICATED.
      const revoked = keyRevocation(ctx);
      const signal = revoked ? AbortSignal.any([ctx.signal, revoked]) : ctx.signal;
      for await (const change of ledger.watchJob(teamId, req.jobId, signal)) {
        yield create(WatchJobResponseSchema, {
          job: toJob(change.job, change.progress),
          changedTasks: change.changedTasks.map((t) => toTask(t)),
        });
      }
      if (revoked?.aborted) throw revoked.reason;
    },
  };
}
