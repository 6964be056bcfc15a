// Sends task attempt spans to the OTLP exporter when tracing is on: job-service is the record of
// task transitions, so it writes each attempt's span when the attempt ends (nothing extra crosses
// the Work stream). The ReportResults call that ended an attempt is a span under it too.
import { SpanKind } from "@opentelemetry/api";
import { SpanOutcome } from "@corral/proto";
import { isSampled, type SpanRecord, type Tracing } from "@corral/server-kit";
import type { Logger } from "pino";
import { attemptSpanId, isErrorOutcome, jobTraceId, parentSpanOf } from "../domain/traces/attempt-spans.js";
import type { EndedAttemptOfTask } from "../domain/traces/ended-attempts.js";

export interface SpanExport {
  /** Exports the spans of attempts that ended (their parents' attempts are read from `store`). */
  attempts(ended: readonly EndedAttemptOfTask[]): Promise<void>;
  /** The call that reported `ended` as a server span under each attempt's span. */
  reportCall(ended: readonly EndedAttemptOfTask[], start: Date, end: Date, rpc?: { traceId: string; spanId: string }): void;
}

export interface SpanExportOptions {
  tracing: Tracing;
  currentAttempts(taskIds: readonly string[]): Promise<Map<string, number>>;
  logger?: Logger;
}

export function createSpanExport(options: SpanExportOptions): SpanExport {
  const { tracing } = options;
  return {
    async attempts(ended) {
      const sampled = ended.filter((e) => isSampled(e.job.trace_flags));
      if (sampled.length === 0) return;
      let parents: Map<string, number>;
      try {
        parents = await options.currentAttempts([...new Set(sampled.flatMap((e) => (e.task.parent_id ? [e.task.parent_id] : [])))]);
      } catch (err) {
        options.logger?.warn({ err }, "reading the parents of ended attempts failed; their spans are not exported");
        return;
      }
      tracing.record(sampled.map((e) => attemptRecord(e, parents)));
    },

    reportCall(ended, start, end, rpc) {
      const records: SpanRecord[] = [];
      for (const e of ended) {
        if (!isSampled(e.job.trace_flags)) continue;
        records.push({
          traceId: jobTraceId(e.job),
          spanId: randomSpanId(),
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

function attemptRecord(e: EndedAttemptOfTask, parents: ReadonlyMap<string, number>): SpanRecord {
  const { task, attempt, job } = e;
  const parentAttempt = task.parent_id === null ? null : (parents.get(task.parent_id) ?? null);
  return {
    traceId: jobTraceId(job),
    spanId: attemptSpanId(task.id, attempt.attempt),
    parentSpanId: parentSpanOf(job, task.parent_id, parentAttempt),
    name: task.identifier_name,
    kind: SpanKind.CONSUMER,
    start: attempt.queueTime,
    end: attempt.stop,
    attributes: {
      "corral.job.id": job.id,
      "corral.task.id": task.id,
      "corral.task.identifier": `${task.identifier_name}@${task.identifier_version}`,
      "corral.task.display": task.display,
      "corral.cluster": task.cluster_slug,
      "corral.node": attempt.runnerId,
      "corral.task.attempt": attempt.attempt,
      "corral.task.outcome": outcomeName(attempt.outcome),
      ...(attempt.start ? { "corral.task.queue_ms": Math.max(0, attempt.start.getTime() - attempt.queueTime.getTime()) } : {}),
    },
    error: isErrorOutcome(attempt.outcome) ? attempt.error || outcomeName(attempt.outcome) : undefined,
    events: attempt.start ? [{ name: "started", time: attempt.start, attributes: { "corral.node": attempt.runnerId } }] : [],
  };
}

function randomSpanId(): string {
  let id = "";
  while (id === "" || id === "0000000000000000") id = crypto.getRandomValues(new Uint8Array(8)).reduce((s, b) => s + b.toString(16).padStart(2, "0"), "");
  return id;
}
