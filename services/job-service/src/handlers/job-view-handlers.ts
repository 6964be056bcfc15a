// JobService handlers that show a job as a whole: its graph, its spans, and its changes as they happen.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { GetJobSpansResponseSchema, GraphDirection, GraphTheme, VisualizeJobResponseSchema, WatchJobResponseSchema, type JobService } from "@corral/proto";
import { keyRevocation, requireTeam } from "@corral/server-kit";
import { toJob, toTask, toTaskSpan } from "../domain/convert.js";
import type { JobLedger } from "../job-ledger.js";

export type JobViewHandlers = Pick<ServiceImpl<typeof JobService>, "visualizeJob" | "getJobSpans" | "watchJob">;

export function jobViewHandlers(ledger: JobLedger): JobViewHandlers {
  return {
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
