// Rows to proto messages.
import { create } from "@bufbuild/protobuf";
import { DurationSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  ConcurrencyLimitSchema,
  DependencyOutputSchema,
  RateLimitSchema,
  ExecutionStatsSchema,
  JobSchema,
  JobWaitReasonSchema,
  ProgressIndicatorSchema,
  TaskEnvelopeSchema,
  TaskIdentifierSchema,
  TaskSchema,
  TaskStateCountsSchema,
  TaskOutputSchema,
  TaskSpanSchema,
  type TaskSpan,
  type Job,
  type JobWaitReason,
  type ProgressIndicator,
  type Task,
  type TaskEnvelope,
  type TaskStateCounts,
  type ConcurrencyLimit,
  type RateLimit,
} from "@corral/proto";
import type { EnvelopeRow, JobRow, ProgressJson, TaskDetailRow } from "../store/database.js";
import { backoffMessage, durationOfMs, waitReason } from "./scheduling.js";
import { runnerMissing, type OnlineRunners, type WaitReasonRow } from "./wait-reasons.js";
import { QUEUED } from "./states.js";
import { attemptTraceparent, jobTraceId, type AttemptSpan } from "./traces/attempt-spans.js";

export function toEnvelope(r: EnvelopeRow): TaskEnvelope {
  return create(TaskEnvelopeSchema, {
    taskId: r.id,
    jobId: r.job_id,
    teamId: r.team_id,
    clusterId: r.cluster_id,
    clusterSlug: r.cluster_slug,
    identifier: create(TaskIdentifierSchema, { name: r.identifier_name, version: r.identifier_version }),
    attempt: r.attempt,
    input: new Uint8Array(r.input),
    display: r.display,
    parentId: r.parent_id ?? "",
    jobName: r.job_name,
    retryCount: r.retry_count,
    maxRetries: r.max_retries,
    dependencyOutputs: (r.dependency_outputs ?? []).map((d) =>
      create(DependencyOutputSchema, {
        taskId: d.task_id,
        identifier: create(TaskIdentifierSchema, { name: d.name, version: d.version }),
        output: create(TaskOutputSchema, { encoding: d.encoding, data: new Uint8Array(Buffer.from(d.data, "base64")) }),
      }),
    ),
    dependencyOutputsOmitted: r.dependency_outputs_omitted ?? false,
    executionTimeout: durationOfMs(r.exec_timeout_ms),
    priority: r.priority,
    concurrency: concurrencyOf(r),
    rateLimit: rateLimitOf(r),
    traceparent: attemptTraceparent({ id: r.job_id, trace_id: r.trace_id, trace_flags: r.trace_flags }, r.id, r.attempt),
  });
}

export function toTaskSpan(s: AttemptSpan): TaskSpan {
  return create(TaskSpanSchema, {
    traceId: s.traceId,
    spanId: s.spanId,
    parentSpanId: s.parentSpanId,
    taskId: s.taskId,
    parentTaskId: s.parentTaskId,
    attempt: s.attempt,
    identifier: create(TaskIdentifierSchema, s.identifier),
    display: s.display,
    clusterSlug: s.clusterSlug,
    runnerId: s.runnerId,
    queueTime: timestampFromDate(s.queueTime),
    startTime: s.startTime ? timestampFromDate(s.startTime) : undefined,
    endTime: s.endTime ? timestampFromDate(s.endTime) : undefined,
    outcome: s.outcome,
    error: s.error,
  });
}

/** A task's concurrency key as a message (undefined without one). */
export function concurrencyOf(r: Pick<EnvelopeRow, "concurrency_key" | "concurrency_limit">): ConcurrencyLimit | undefined {
  return r.concurrency_key === null ? undefined : create(ConcurrencyLimitSchema, { key: r.concurrency_key, limit: r.concurrency_limit });
}

/** A task's rate limit as a message (undefined without one). */
export function rateLimitOf(r: Pick<EnvelopeRow, "rate_limit_name" | "rate_limit" | "rate_period_ms">): RateLimit | undefined {
  return r.rate_limit_name === null
    ? undefined
    : create(RateLimitSchema, { name: r.rate_limit_name, limit: r.rate_limit, period: durationOfMs(r.rate_period_ms) });
}

export function toProgress(p: ProgressJson[] | null): ProgressIndicator[] {
  return (p ?? []).map((x) =>
    create(ProgressIndicatorSchema, { label: x.label, total: BigInt(x.total), done: BigInt(x.done) }),
  );
}

export function toStateCounts(j: JobRow): TaskStateCounts {
  return create(TaskStateCountsSchema, {
    queued: j.queued,
    running: j.running,
    computed: j.computed,
    failed: j.failed,
    skipped: j.skipped,
    failedOptional: j.failed_optional,
    canceled: j.canceled_tasks,
    total: j.total,
  });
}

function duration(ms: number) {
  const whole = Math.max(0, Math.round(ms));
  return create(DurationSchema, { seconds: BigInt(Math.floor(whole / 1000)), nanos: (whole % 1000) * 1_000_000 });
}

export function toJob(j: JobRow, progress: ProgressJson[] | null = null, now = new Date()): Job {
  const stop = j.end_time ? (j.last_stop_time ?? j.end_time) : now;
  const elapsedMs = Math.max(0, stop.getTime() - j.submit_time.getTime());
  return create(JobSchema, {
    id: j.id,
    name: j.name,
    clusterSlug: j.cluster_slug,
    state: j.state,
    submitTime: timestampFromDate(j.submit_time),
    canceled: j.canceled,
    idempotencyKey: j.idempotency_key ?? "",
    teamId: j.team_id,
    endTime: j.end_time ? timestampFromDate(j.end_time) : undefined,
    automationId: j.automation_id ?? "",
    traceId: jobTraceId(j),
    progress: toProgress(progress),
    stats: create(ExecutionStatsSchema, {
      firstTaskStartTime: j.first_start_time ? timestampFromDate(j.first_start_time) : undefined,
      lastTaskStopTime: j.last_stop_time ? timestampFromDate(j.last_stop_time) : undefined,
      computeTime: duration(j.compute_ms),
      elapsedTime: duration(elapsedMs),
      parallelism: elapsedMs > 0 ? j.compute_ms / elapsedMs : 0,
      tasksByState: toStateCounts(j),
    }),
  });
}

/** `online`: the team's online runners, when known, so a queued task says which runner it lacks. */
export function toTask(t: TaskDetailRow, now = new Date(), online?: OnlineRunners): Task {
  return create(TaskSchema, {
    id: t.id,
    jobId: t.job_id,
    parentId: t.parent_id ?? "",
    identifier: create(TaskIdentifierSchema, { name: t.identifier_name, version: t.identifier_version }),
    display: t.display,
    state: t.state,
    clusterSlug: t.cluster_slug,
    attempt: t.attempt,
    retryCount: t.retry_count,
    leaseExpiryCount: t.lease_expiry_count,
    maxRetries: t.max_retries,
    optional: t.optional,
    dependsOn: t.depends_on ?? [],
    runnerId: t.runner_id,
    startTime: t.start_time ? timestampFromDate(t.start_time) : undefined,
    stopTime: t.stop_time ? timestampFromDate(t.stop_time) : undefined,
    error: t.error,
    progress: toProgress(t.progress),
    subtaskCount: t.subtask_count,
    input: t.input ? new Uint8Array(t.input) : new Uint8Array(),
    output: t.output_data ? create(TaskOutputSchema, { encoding: t.output_encoding ?? 0, data: new Uint8Array(t.output_data) }) : undefined,
    outputAttempt: t.output_data ? t.attempt : 0,
    executionTimeout: durationOfMs(t.exec_timeout_ms),
    scheduleToStartTimeout: durationOfMs(t.start_timeout_ms),
    retryBackoff: backoffMessage(t.retry_backoff),
    notBefore: t.state === QUEUED && t.not_before ? timestampFromDate(t.not_before) : undefined,
    errorKind: t.error_kind,
    waitReason:
      t.state === QUEUED
        ? waitReason(t, now, online && runnerMissing(t.cluster_slug, { name: t.identifier_name, version: t.identifier_version }, online))
        : "",
    startDeadline: t.state === QUEUED && t.start_deadline ? timestampFromDate(t.start_deadline) : undefined,
    priority: t.priority,
    concurrency: concurrencyOf(t),
    rateLimit: rateLimitOf(t),
  });
}

export function toJobWaitReason(r: WaitReasonRow): JobWaitReason {
  return create(JobWaitReasonSchema, { clusterSlug: r.clusterSlug, identifier: r.identifier, tasks: r.tasks, message: r.message });
}
