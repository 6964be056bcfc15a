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
  };
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

/**
 * Why a queued task is not running yet, for people (empty when it is not queued). `noRunner`: why
 * no runner takes it ("no online runner on cluster X serves my/Leaf@v1.2"), when that is known.
 */
export function waitReason(
  t: { waiting_deps: number; not_before: Date | null; start_deadline: Date | null },
  now: Date,
  noRunner?: string,
): string {
  if (t.waiting_deps > 0) return `waits for ${t.waiting_deps} ${t.waiting_deps === 1 ? "dependency" : "dependencies"}`;
  if (t.not_before && t.not_before.getTime() > now.getTime()) return `delayed until ${t.not_before.toISOString()}`;
  const why = noRunner ?? "waits for a runner";
  if (t.start_deadline) return `${why} (fails if not started by ${t.start_deadline.toISOString()})`;
  return why;
}

