// corral.jobs.v1.TaskLedgerService handlers (internal: the service key only).
import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  AcknowledgeDispatchResponseSchema,
  ReportProgressResponseSchema,
  ReportResultsResponseSchema,
  ResyncDispatchResponseSchema,
  type TaskLedgerService,
} from "@corral/proto";
import { requireService, rpcSpan } from "@corral/server-kit";
import type { JobLedger } from "./job-ledger.js";
import type { SpanExport } from "./traces/span-export.js";

export function createTaskLedgerServiceImpl(ledger: JobLedger, spanExport?: SpanExport): ServiceImpl<typeof TaskLedgerService> {
  return {
    async reportResults(req, ctx) {
      requireService(ctx);
      const start = spanExport ? new Date() : undefined;
      const out = await ledger.reportResults({ results: req.results, dispatched: req.dispatched });
      if (spanExport && start && out.ended.length > 0) {
        // The call joins each trace it ended an attempt of, linked to its own span.
        const rpc = rpcSpan(ctx);
        spanExport.reportCall(out.ended, start, new Date(), rpc);
      }
      return create(ReportResultsResponseSchema, { outcomes: out.outcomes, ready: out.ready });
    },

    async reportProgress(req, ctx) {
      requireService(ctx);
      const applied = await ledger.reportProgress(req.tasks);
      return create(ReportProgressResponseSchema, { appliedCount: applied });
    },

    async acknowledgeDispatch(req, ctx) {
      requireService(ctx);
      await ledger.acknowledgeDispatch(req.tasks.map((t) => ({ taskId: t.taskId, attempt: t.attempt })));
      return create(AcknowledgeDispatchResponseSchema, {});
    },

    async resyncDispatch(req, ctx) {
      requireService(ctx);
      // A broker's clock ahead of ours must not reach attempts that start after this request.
      const now = new Date();
      const since = req.lostSince ? timestampDate(req.lostSince) : now;
      const { expired, requeued } = await ledger.resyncDispatch(req.reason || `broker ${req.brokerId}`, since < now ? since : now);
      return create(ResyncDispatchResponseSchema, { expiredCount: expired, requeuedCount: requeued });
    },
  };
}
