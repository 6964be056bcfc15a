// Scheduling controls as pure rules: a submission's timeouts, backoff and start time resolved
// against its job's defaults, the delay before a retry, whether an outbox row is due, and why a
// queued task waits. No I/O; every rule takes the time it needs.
import { timestampDate, type Duration } from "@bufbuild/protobuf/wkt";
import { create } from "@bufbuild/protobuf";
import { RetryBackoffSchema, TaskErrorKind, type RetryBackoff, type TaskDefaults, type TaskSubmission } from "@corral/proto";
import type { RetryBackoffJson, TaskDefaultsJson } from "../store/database.js";

/** What a new task is scheduled with (the task row's columns). */
export interface TaskSchedule {
  exec_timeout_ms: number;
  start_timeout_ms: number;
  retry_backoff: RetryBackoffJson | null;
  not_before: Date | null;
  priority: number;
  concurrency_key: string | null;
  concurrency_limit: number;
  rate_limit_name: string | null;
  rate_limit: number;
  rate_period_ms: number;
}

export function durationMs(d: Duration | undefined): number {
  if (!d) return 0;
  return Number(d.seconds) * 1000 + Math.floor(d.nanos / 1_000_000);
}

export function durationOfMs(ms: number): Duration | undefined {
  if (ms <= 0) return undefined;
  return { $typeName: "google.protobuf.Duration", seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
}

/** A backoff policy as stored; undefined when the message sets nothing. */
export function backoffJson(b: RetryBackoff | undefined): RetryBackoffJson | null {
  if (!b) return null;
  const initialMs = durationMs(b.initialInterval);
  if (initialMs <= 0) return null;
  const multiplier = b.multiplier > 0 ? b.multiplier : 2;
  const maxMs = durationMs(b.maximumInterval) > 0 ? durationMs(b.maximumInterval) : initialMs * 100;
  return { initialMs, multiplier, maxMs: Math.max(maxMs, initialMs), jitter: b.jitter };
}

export function backoffMessage(j: RetryBackoffJson | null): RetryBackoff | undefined {
  if (!j) return undefined;
  return create(RetryBackoffSchema, {
    initialInterval: durationOfMs(j.initialMs),
    multiplier: j.multiplier,
    maximumInterval: durationOfMs(j.maxMs),
    jitter: j.jitter,
  });
}

/** A job's defaults as stored; null when they set nothing. */
export function taskDefaultsJson(d: TaskDefaults | undefined): TaskDefaultsJson | null {
  if (!d) return null;
  const out = {
    execTimeoutMs: durationMs(d.executionTimeout),
    startTimeoutMs: durationMs(d.scheduleToStartTimeout),
    retryBackoff: backoffJson(d.retryBackoff),
  };
  return out.execTimeoutMs === 0 && out.startTimeoutMs === 0 && out.retryBackoff === null ? null : out;
}

/** A submission's own settings, else its job's defaults; its start time from not_before and start_delay. */
export function scheduleOf(s: TaskSubmission, defaults: TaskDefaultsJson | null, now: Date): TaskSchedule {
  const backoff = backoffJson(s.retryBackoff) ?? defaults?.retryBackoff ?? null;
  const delayMs = durationMs(s.startDelay);
  const at = Math.max(s.notBefore ? timestampDate(s.notBefore).getTime() : 0, delayMs > 0 ? now.getTime() + delayMs : 0);
  return {
    exec_timeout_ms: durationMs(s.executionTimeout) || (defaults?.execTimeoutMs ?? 0),
    start_timeout_ms: durationMs(s.scheduleToStartTimeout) || (defaults?.startTimeoutMs ?? 0),
    retry_backoff: backoff,
    not_before: at > now.getTime() ? new Date(at) : null,
    priority: Math.min(9, s.priority),
    ...gateOf(s),
  };
}

/** A submission's concurrency key and rate limit as stored (null and 0 for none). */
export function gateOf(s: Pick<TaskSubmission, "concurrency" | "rateLimit">): Pick<
  TaskSchedule,
  "concurrency_key" | "concurrency_limit" | "rate_limit_name" | "rate_limit" | "rate_period_ms"
> {
  const c = s.concurrency?.key ? s.concurrency : undefined;
  const r = s.rateLimit?.name ? s.rateLimit : undefined;
  return {
    concurrency_key: c ? c.key : null,
    concurrency_limit: c ? Math.max(1, c.limit) : 0,
    rate_limit_name: r ? r.name : null,
    rate_limit: r ? Math.max(1, r.limit) : 0,
    rate_period_ms: r ? Math.max(1, durationMs(r.period)) : 0,
  };
}

/** A rate limit's period for people: "1s", "500ms", "1m", "1h" when whole, else milliseconds. */
export function periodText(ms: number): string {
  for (const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1_000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/**
 * The wait before retry number `retry` (1 for the first retry): min(initial * multiplier^(retry-1),
 * max), less a random share of up to `jitter` of it. Computed in log space, so a large retry
 * number cannot overflow.
 */
export function backoffDelayMs(policy: RetryBackoffJson, retry: number, random: () => number = Math.random): number {
  const n = Math.max(0, retry - 1);
  const capped =
    Math.log(policy.initialMs) + n * Math.log(policy.multiplier) >= Math.log(policy.maxMs)
      ? policy.maxMs
      : policy.initialMs * policy.multiplier ** n;
  const jitter = Math.min(1, Math.max(0, policy.jitter));
  return Math.round(capped * (1 - jitter * random()));
}

/** When an attempt that became ready at `now` fails unless started (null: it never does). */
export function startDeadline(startTimeoutMs: number, notBefore: Date | null, now: Date): Date | null {
  if (startTimeoutMs <= 0) return null;
  return new Date(Math.max(now.getTime(), notBefore?.getTime() ?? 0) + startTimeoutMs);
}

/** Whether an attempt may go to the broker now. */
export function isDue(notBefore: Date | null, now: Date): boolean {
  return notBefore === null || notBefore.getTime() <= now.getTime();
}

/** The error kind a failure reports (unspecified reads as ERROR). */
export function failureKind(kind: TaskErrorKind): TaskErrorKind {
  return kind === TaskErrorKind.UNSPECIFIED ? TaskErrorKind.ERROR : kind;
}

/** What waitReason reads of a queued task. */
export interface WaitingTask {
  waiting_deps: number;
  not_before: Date | null;
  start_deadline: Date | null;
  concurrency_key?: string | null;
  concurrency_limit?: number;
  /** Tasks of its key running in its cluster now (read with the task). */
  concurrency_running?: number | null;
  rate_limit_name?: string | null;
  rate_limit?: number;
  rate_period_ms?: number;
  /** Starts of its rate limit in its cluster within the last period (read with the task). */
  rate_recent_starts?: number | null;
}

/**
 * Why a queued task is not running yet, for people (empty when it is not queued). `noRunner`: why
 * no runner takes it ("no online runner on cluster X serves my/Leaf@v1.2"), when that is known.
 */
export function waitReason(t: WaitingTask, now: Date, noRunner?: string): string {
  if (t.waiting_deps > 0) return `waits for ${t.waiting_deps} ${t.waiting_deps === 1 ? "dependency" : "dependencies"}`;
  if (t.not_before && t.not_before.getTime() > now.getTime()) return `delayed until ${t.not_before.toISOString()}`;
  const limit = t.concurrency_limit ?? 0;
  if (t.concurrency_key && t.concurrency_running != null && t.concurrency_running >= limit) {
    return `key ${t.concurrency_key} at its limit ${t.concurrency_running}/${limit}`;
  }
  const rate = t.rate_limit ?? 0;
  if (t.rate_limit_name && t.rate_recent_starts != null && t.rate_recent_starts >= rate) {
    return `rate limit ${t.rate_limit_name} ${rate}/${periodText(t.rate_period_ms ?? 0)}`;
  }
  const why = noRunner ?? "waits for a runner";
  if (t.start_deadline) return `${why} (fails if not started by ${t.start_deadline.toISOString()})`;
  return why;
}

