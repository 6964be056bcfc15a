// A job's trace as the SDK gives it: one span per task attempt, in plain values.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { SpanOutcome, type TaskSpan as TaskSpanMessage } from "@corral/proto";
import { context, propagation } from "@opentelemetry/api";

/** How an attempt ended, or that it has not: `queued`, `running`, then one of the others. */
export type SpanOutcomeName =
  | "queued"
  | "running"
  | "computed"
  | "failed"
  | "retried"
  | "lease_expired"
  | "timed_out"
  | "released"
  | "canceled"
  | "skipped"
  | "unspecified";

/** One task attempt as a span of its job's trace (W3C ids in lowercase hex). */
export interface TaskSpan {
  traceId: string;
  spanId: string;
  /** The parent task's attempt's span; for a root task the submitter's span, or "" (a root span). */
  parentSpanId: string;
  taskId: string;
  /** "" for a root task. */
  parentTaskId: string;
  attempt: number;
  identifier: { name: string; version: string };
  display: string;
  cluster: string;
  /** The runner (node) that ran it; "" when it never started. */
  node: string;
  /** When the attempt was queued: the span's start. */
  queued: Date;
  started?: Date;
  /** Unset while queued or running. */
  ended?: Date;
  outcome: SpanOutcomeName;
  error: string;
}

export interface JobTrace {
  jobId: string;
  traceId: string;
  /** The submitter's span the job continues ("" when the job started its trace). */
  parentSpanId: string;
  /** By task in submission order, each task's attempts in order. */
  spans: TaskSpan[];
}

export function toTaskSpan(s: TaskSpanMessage): TaskSpan {
  return {
    traceId: s.traceId,
    spanId: s.spanId,
    parentSpanId: s.parentSpanId,
    taskId: s.taskId,
    parentTaskId: s.parentTaskId,
    attempt: s.attempt,
    identifier: { name: s.identifier?.name ?? "", version: s.identifier?.version ?? "" },
    display: s.display,
    cluster: s.clusterSlug,
    node: s.runnerId,
    queued: s.queueTime ? timestampDate(s.queueTime) : new Date(0),
    started: s.startTime ? timestampDate(s.startTime) : undefined,
    ended: s.endTime ? timestampDate(s.endTime) : undefined,
    outcome: (SpanOutcome[s.outcome]?.toLowerCase() ?? "unspecified") as SpanOutcomeName,
    error: s.error,
  };
}

/**
 * The headers that carry the caller's trace to SubmitJob: the given traceparent, else the active
 * OpenTelemetry context's (nothing when the process registered no propagator or has no active span).
 */
export function traceHeaders(traceparent: string | undefined): Record<string, string> | undefined {
  if (traceparent) return { traceparent };
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent ? { traceparent: carrier.traceparent } : undefined;
}
