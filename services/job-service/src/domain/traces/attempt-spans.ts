// A job is a trace and each task attempt a span of it. Pure rules: the ids (a span id derived from
// task id and attempt, so every replica and the runner agree without storing it), how an attempt
// ended, and the spans of a job from its task rows and the attempts retries superseded.
import { hash } from "node:crypto";
import { SpanOutcome, TaskErrorKind } from "@corral/proto";
import type { JobRow, SpanTaskRow, TaskSpanRow } from "../../store/database.js";
import type { EndedAttemptOfTask } from "./ended-attempts.js";
import { CANCELED, COMPUTED, FAILED, FAILED_OPTIONAL, QUEUED, RUNNING, SKIPPED } from "../states.js";

/** One task attempt as a span. Times are null while they have not happened. */
export interface AttemptSpan {
  jobId: string;
  traceId: string;
  spanId: string;
  /** Empty: a root span. */
  parentSpanId: string;
  taskId: string;
  parentTaskId: string;
  attempt: number;
  identifier: { name: string; version: string };
  display: string;
  clusterSlug: string;
  runnerId: string;
  queueTime: Date;
  startTime: Date | null;
  endTime: Date | null;
  outcome: SpanOutcome;
  error: string;
}

/** The job's trace: stored at submission; a job older than traces reads as its id's hex digits. */
export function jobTraceId(job: Pick<JobRow, "id" | "trace_id">): string {
  if (job.trace_id) return job.trace_id;
  const hex = job.id.replace(/-/g, "").toLowerCase();
  return /^[0-9a-f]{32}$/.test(hex) ? hex : hash("sha256", job.id, "hex").slice(0, 32);
}

/** The span id of a task attempt: the same on every replica, and never all zeros. */
export function attemptSpanId(taskId: string, attempt: number): string {
  const key = `${taskId}/${attempt}`;
  let id = recentSpanIds.get(key);
  if (id === undefined) {
    id = hash("sha256", key, "hex").slice(0, 16);
    if (id === "0000000000000000") id = "0000000000000001";
    // Asked three or four times per attempt (its dispatch, its end, the call that ended it, its subtasks):
    // the latest ids are kept, the map emptied when full.
    if (recentSpanIds.size >= 16_384) recentSpanIds.clear();
    recentSpanIds.set(key, id);
  }
  return id;
}

const recentSpanIds = new Map<string, string>();

/** What the runner's task code continues: the attempt's span as a W3C traceparent. */
export function attemptTraceparent(job: Pick<JobRow, "id" | "trace_id" | "trace_flags">, taskId: string, attempt: number): string {
  const flags = (job.trace_flags ?? 1) & 0xff;
  return `00-${jobTraceId(job)}-${attemptSpanId(taskId, attempt)}-${flags.toString(16).padStart(2, "0")}`;
}

/**
 * The span the attempts of a task are children of: its parent's attempt that submitted it (the
 * parent's current one: a retried parent's subtasks are dropped with its failed attempt), or for a
 * root task the caller's span the job continues.
 */
export function parentSpanOf(job: Pick<JobRow, "trace_parent_span_id">, parentId: string | null, parentAttempt: number | null): string {
  if (parentId === null) return job.trace_parent_span_id ?? "";
  return parentAttempt === null ? "" : attemptSpanId(parentId, parentAttempt);
}

/** How the current attempt of a task in `state` stands (error_kind: why its last attempt ended). */
export function currentOutcome(state: number, errorKind: number): SpanOutcome {
  switch (state) {
    case QUEUED:
      return SpanOutcome.QUEUED;
    case RUNNING:
      return SpanOutcome.RUNNING;
    case COMPUTED:
      return SpanOutcome.COMPUTED;
    case FAILED:
    case FAILED_OPTIONAL:
      if (errorKind === TaskErrorKind.TIMED_OUT) return SpanOutcome.TIMED_OUT;
      if (errorKind === TaskErrorKind.LEASE_EXPIRED) return SpanOutcome.LEASE_EXPIRED;
      return SpanOutcome.FAILED;
    case SKIPPED:
      return SpanOutcome.SKIPPED;
    case CANCELED:
      return SpanOutcome.CANCELED;
    default:
      return SpanOutcome.UNSPECIFIED;
  }
}

/** Outcomes whose span status is ERROR. */
export function isErrorOutcome(o: SpanOutcome): boolean {
  return o === SpanOutcome.FAILED || o === SpanOutcome.RETRIED || o === SpanOutcome.LEASE_EXPIRED || o === SpanOutcome.TIMED_OUT;
}

/**
 * When a task's current attempt ended: its stop time, unless the attempt never started and the
 * stop time is older than its queueing (an earlier attempt's, on rows canceled before cancels
 * stored their time).
 */
function attemptEnd(t: Pick<SpanTask, "start_time" | "stop_time" | "queue_time">): Date | null {
  if (!t.stop_time) return null;
  return t.start_time === null && t.stop_time < t.queue_time ? null : t.stop_time;
}

/** The span of an attempt a result ended, with its task as the batch left it. */
export function endedAttemptSpan(e: EndedAttemptOfTask, parentAttempt: number | null): AttemptSpan {
  const { task, attempt, job } = e;
  return {
    jobId: job.id,
    traceId: jobTraceId(job),
    spanId: attemptSpanId(task.id, attempt.attempt),
    parentSpanId: parentSpanOf(job, task.parent_id, parentAttempt),
    taskId: task.id,
    parentTaskId: task.parent_id ?? "",
    attempt: attempt.attempt,
    identifier: { name: task.identifier_name, version: task.identifier_version },
    display: task.display,
    clusterSlug: task.cluster_slug,
    runnerId: attempt.runnerId,
    queueTime: attempt.queueTime,
    startTime: attempt.start,
    endTime: attempt.stop,
    outcome: attempt.outcome,
    error: attempt.error,
  };
}

/** A task's span columns with its parent's current attempt (null for a root). */
export type SpanTask = SpanTaskRow & { parent_attempt: number | null };

/**
 * The spans of some of a job's tasks: for each task, its superseded attempts (stored when a retry
 * replaced them) then its current attempt (read from the task row), in attempt order.
 */
export function spansOfTasks(job: Pick<JobRow, "id" | "trace_id" | "trace_parent_span_id">, tasks: readonly SpanTask[], superseded: readonly TaskSpanRow[]): AttemptSpan[] {
  const traceId = jobTraceId(job);
  const earlier = new Map<string, TaskSpanRow[]>();
  for (const s of superseded) earlier.set(s.task_id, [...(earlier.get(s.task_id) ?? []), s]);
  const out: AttemptSpan[] = [];
  for (const t of tasks) {
    const base = {
      jobId: job.id,
      traceId,
      parentSpanId: parentSpanOf(job, t.parent_id, t.parent_attempt),
      taskId: t.id,
      parentTaskId: t.parent_id ?? "",
      identifier: { name: t.identifier_name, version: t.identifier_version },
      display: t.display,
      clusterSlug: t.cluster_slug,
    };
    for (const s of (earlier.get(t.id) ?? []).sort((a, b) => a.attempt - b.attempt)) {
      if (s.attempt >= t.attempt) continue;
      out.push({
        ...base,
        spanId: attemptSpanId(t.id, s.attempt),
        attempt: s.attempt,
        runnerId: s.runner_id,
        queueTime: s.queue_time,
        startTime: s.start_time,
        endTime: s.stop_time,
        outcome: s.outcome,
        error: s.error,
      });
    }
    const outcome = currentOutcome(t.state, t.error_kind);
    const ended = t.state !== QUEUED && t.state !== RUNNING;
    const started = t.state !== QUEUED && t.start_time !== null;
    out.push({
      ...base,
      spanId: attemptSpanId(t.id, t.attempt),
      attempt: t.attempt,
      runnerId: started ? t.runner_id : "",
      queueTime: t.queue_time,
      startTime: started ? t.start_time : null,
      endTime: ended ? attemptEnd(t) : null,
      outcome,
      error: isErrorOutcome(outcome) ? t.error : "",
    });
  }
  return out;
}
