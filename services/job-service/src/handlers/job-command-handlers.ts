// JobService handlers that change jobs: submit, cancel, retry, clone.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  CancelJobResponseSchema,
  CloneJobResponseSchema,
  RetryJobResponseSchema,
  SubmitJobResponseSchema,
  type JobService,
} from "@corral/proto";
import { callerTrace, requireTeam } from "@corral/server-kit";
import { toJob } from "../domain/convert.js";
import type { JobLedger } from "../job-ledger.js";

export type JobCommandHandlers = Pick<ServiceImpl<typeof JobService>, "submitJob" | "cancelJob" | "retryJob" | "cloneJob">;

export function jobCommandHandlers(ledger: JobLedger): JobCommandHandlers {
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
  };
}
