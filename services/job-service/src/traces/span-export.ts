// Sends task attempt spans to the OTLP exporter when tracing is on: job-service is the record of
// task transitions, so it writes each attempt's span when the attempt ends (nothing extra crosses
// the Work stream). The ReportResults call that ended an attempt is a span under it too.
import { SpanKind } from "@opentelemetry/api";
import { SpanOutcome } from "@corral/proto";
import { isSampled, type SpanRecord, type Tracing } from "@corral/server-kit";
import type { Logger } from "pino";
import { attemptSpanId, endedAttemptSpan, isErrorOutcome, jobTraceId, spansOfTasks, type AttemptSpan } from "../domain/traces/attempt-spans.js";
import type { EndedAttemptOfTask } from "../domain/traces/ended-attempts.js";
import type { StoppedSpanTask } from "../store/span-repository.js";

export interface SpanExport {
  /** Exports the spans of attempts results ended (their parents' attempts are read from the store). */
  attempts(ended: readonly EndedAttemptOfTask[]): Promise<void>;
  /** Exports the spans of tasks a cancel or a failed branch stopped without a result (skipped, canceled). */
  stopped(taskIds: readonly string[]): Promise<void>;
  /** The call that reported `ended` as a server span under each attempt's span. */
  reportCall(ended: readonly EndedAttemptOfTask[], start: Date, end: Date, rpc?: { traceId: string; spanId: string }): void;
}

export interface SpanExportOptions {
  tracing: Tracing;
  currentAttempts(taskIds: readonly string[]): Promise<Map<string, number>>;
  stoppedTasks(taskIds: readonly string[]): Promise<StoppedSpanTask[]>;
  now?: () => Date;
  logger?: Logger;
}

export function createSpanExport(options: SpanExportOptions): SpanExport {
  const { tracing } = options;
  const now = options.now ?? (() => new Date());
  const failed = (what: string) => (err: unknown) => options.logger?.warn({ err }, `reading ${what} failed; their spans are not exported`);
  return {
    async attempts(ended) {
      const sampled = ended.filter((e) => isSampled(e.job.trace_flags));
      if (sampled.length === 0) return;
      const parentIds = [...new Set(sampled.flatMap((e) => (e.task.parent_id ? [e.task.parent_id] : [])))];
      const parents = await options.currentAttempts(parentIds).catch(failed("the parents of ended attempts"));
      if (!parents) return;
      tracing.record(sampled.map((e) => spanRecord(endedAttemptSpan(e, e.task.parent_id ? (parents.get(e.task.parent_id) ?? null) : null))));
    },

    async stopped(taskIds) {
      if (taskIds.length === 0) return;
      const rows = await options.stoppedTasks(taskIds).catch(failed("stopped tasks"));
      if (!rows) return;
      const end = now();
      const records: SpanRecord[] = [];
      for (const row of rows) {
        if (!isSampled(row.trace_flags)) continue;
        const [span] = spansOfTasks({ id: row.job_id, trace_id: row.trace_id, trace_parent_span_id: row.trace_parent_span_id }, [row], []);
        // Read after the commit: a RetryJob since may have queued it again.
        if (!span || (span.outcome !== SpanOutcome.SKIPPED && span.outcome !== SpanOutcome.CANCELED)) continue;
        records.push(spanRecord({ ...span, endTime: span.endTime ?? end }));
      }
      if (records.length > 0) tracing.record(records);
    },

    reportCall(ended, start, end, rpc) {
      const records: SpanRecord[] = [];
      for (const e of ended) {
        if (!isSampled(e.job.trace_flags)) continue;
        records.push({
          traceId: jobTraceId(e.job),
          spanId: tracing.newSpanId(),
          parentSpanId: attemptSpanId(e.task.id, e.attempt.attempt),
          name: "corral.jobs.v1.TaskLedgerService/ReportResults",
          kind: SpanKind.SERVER,
          start,
          end,
          attributes: { "rpc.system": "grpc", "rpc.service": "corral.jobs.v1.TaskLedgerService", "rpc.method": "ReportResults", "corral.task.id": e.task.id },
          links: rpc ? [{ traceId: rpc.traceId, spanId: rpc.spanId }] : undefined,
        });
      }
      if (records.length > 0) tracing.record(records);
    },
  };
}

/** The lowercase name of an outcome, as the attribute and the CLI show it. */
export const outcomeName = (o: SpanOutcome): string => (SpanOutcome[o] ?? "unspecified").toLowerCase();

/** An ended attempt's span as OpenTelemetry records it: from its queue time to its end, "started" as an event. */
export function spanRecord(s: AttemptSpan): SpanRecord {
  const end = s.endTime ?? s.startTime ?? s.queueTime;
  return {
    traceId: s.traceId,
    spanId: s.spanId,
    parentSpanId: s.parentSpanId,
    name: s.identifier.name,
    kind: SpanKind.CONSUMER,
    start: s.queueTime,
    end,
    attributes: {
      "corral.job.id": s.jobId,
      "corral.task.id": s.taskId,
      "corral.task.identifier": `${s.identifier.name}@${s.identifier.version}`,
      "corral.task.display": s.display,
      "corral.cluster": s.clusterSlug,
      "corral.node": s.runnerId,
      "corral.task.attempt": s.attempt,
      "corral.task.outcome": outcomeName(s.outcome),
      ...(s.startTime ? { "corral.task.queue_ms": Math.max(0, s.startTime.getTime() - s.queueTime.getTime()) } : {}),
    },
    error: isErrorOutcome(s.outcome) ? s.error || outcomeName(s.outcome) : undefined,
    events: s.startTime ? [{ name: "started", time: s.startTime, attributes: { "corral.node": s.runnerId } }] : [],
  };
}
