// Scheduling options as people write them ("30s", 1500, a Date) turned into the contract's
// durations, timestamps and backoff policy, checked here so a mistake names its option.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate, type Duration, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  ConcurrencyLimitSchema,
  RateLimitSchema,
  RetryBackoffSchema,
  TaskDefaultsSchema,
  type ConcurrencyLimit,
  type RateLimit,
  type RetryBackoff,
  type TaskDefaults,
} from "@corral/proto";
import { ValidationError } from "./errors.js";

/** Milliseconds, or text such as "500ms", "30s", "5m", "2h", "1d". */
export type DurationInput = number | string;

/** How long a failed attempt waits before its retry: retry n waits min(initial * multiplier^(n-1), max). */
export interface BackoffOptions {
  initial: DurationInput;
  /** Default 2. */
  multiplier?: number;
  /** Default 100 times `initial`. */
  max?: DurationInput;
  /** 0 to 1: takes off a random share of up to this much of each delay (default 0). */
  jitter?: number;
}

export interface TaskRetryOptions {
  /** Retries after the first attempt (same as maxRetries). */
  max?: number;
  backoff?: BackoffOptions;
}

/** The scheduling part of a submission's options, and of a task class's static defaults. */
export interface SchedulingOptions {
  /** How long one attempt may run: the task's signal aborts then and the attempt fails as TIMED_OUT. */
  timeout?: DurationInput;
  /** How long an attempt may wait for a runner once it could start; then the task fails, without a retry. */
  scheduleToStartTimeout?: DurationInput;
  retry?: TaskRetryOptions;
  /** Starts no earlier than this. */
  notBefore?: Date;
  /** Starts no earlier than this long after submission. */
  delay?: DurationInput;
  /** 0 (default) to 9: higher runs first on its runners; lower ones keep a bounded share. */
  priority?: number;
  /**
   * At most `limit` (default 1) tasks with this key run at once in the task's cluster; the others
   * wait, keys taking turns. In a task class's defaults the key may be read from the task:
   * `{ key: (t) => t.input.customer, limit: 2 }`.
   */
  concurrency?: ConcurrencyOption;
  /** Shorthand for `concurrency.key`, keeping the limit of `concurrency` (or the class default, else 1). */
  concurrencyKey?: string;
  /** The task starts only while the cluster's named rate limit allows: at most `limit` starts in any `period`. */
  rateLimit?: RateLimitOption;
}

export interface ConcurrencyOption {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  key: string | ((task: any) => string);
  /** 1 to 100000; default 1. */
  limit?: number;
}

export interface RateLimitOption {
  name: string;
  /** Starts per period, 1 to 100000. */
  limit: number;
  /** 1ms to 1 day, e.g. "1s", "1m". */
  period: DurationInput;
}

const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a duration option; throws a ValidationError naming `field`. */
export function parseDurationMs(value: DurationInput, field: string): number {
  let ms: number;
  if (typeof value === "number") ms = value;
  else {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(value);
    if (!m) throw ValidationError.field(field, `${JSON.stringify(value)} is not a duration like "500ms", "30s", "5m", "2h"`);
    ms = Number(m[1]) * units[m[2]!]!;
  }
  if (!Number.isFinite(ms) || ms < 0) throw ValidationError.field(field, "must be a duration of 0 or more");
  return Math.round(ms);
}

function duration(value: DurationInput | undefined, field: string, maxMs: number): Duration | undefined {
  if (value === undefined) return undefined;
  const ms = parseDurationMs(value, field);
  if (ms > maxMs) throw ValidationError.field(field, `must be at most ${maxMs / 1000} s`);
  if (ms === 0) return undefined;
  return { $typeName: "google.protobuf.Duration", seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
}

const WEEK_MS = 7 * 86_400_000;
const MAX_START_WAIT_MS = 20 * 86_400_000;
const YEAR_MS = 365 * 86_400_000;

export function backoffMessage(b: BackoffOptions | undefined): RetryBackoff | undefined {
  if (!b) return undefined;
  const multiplier = b.multiplier ?? 0;
  if (!Number.isFinite(multiplier) || multiplier < 0 || multiplier > 100) {
    throw ValidationError.field("retry_backoff.multiplier", "must be from 1 to 100");
  }
  const jitter = b.jitter ?? 0;
  if (!(jitter >= 0 && jitter <= 1)) throw ValidationError.field("retry_backoff.jitter", "must be from 0 to 1");
  return create(RetryBackoffSchema, {
    initialInterval: duration(b.initial, "retry_backoff.initial_interval", YEAR_MS),
    multiplier,
    maximumInterval: duration(b.max, "retry_backoff.maximum_interval", YEAR_MS),
    jitter,
  });
}

/** The TaskSubmission fields of scheduling options. */
export function schedulingFields(o: SchedulingOptions): {
  executionTimeout?: Duration;
  scheduleToStartTimeout?: Duration;
  retryBackoff?: RetryBackoff;
  notBefore?: Timestamp;
  startDelay?: Duration;
  priority: number;
} {
  if (o.notBefore !== undefined && !(o.notBefore instanceof Date && Number.isFinite(o.notBefore.getTime()))) {
    throw ValidationError.field("not_before", "must be a valid Date");
  }
  return {
    executionTimeout: duration(o.timeout, "execution_timeout", WEEK_MS),
    scheduleToStartTimeout: duration(o.scheduleToStartTimeout, "schedule_to_start_timeout", MAX_START_WAIT_MS),
    retryBackoff: backoffMessage(o.retry?.backoff),
    notBefore: o.notBefore ? timestampFromDate(o.notBefore) : undefined,
    startDelay: duration(o.delay, "start_delay", YEAR_MS),
    priority: priorityOf(o.priority),
  };
}

const gateName = /^[^\x00-\x1f\x7f]{1,256}$/;

/** The TaskSubmission fields of a concurrency key and a rate limit; `task` resolves a key read from it. */
export function gateFields(o: Pick<SchedulingOptions, "concurrency" | "concurrencyKey" | "rateLimit">, task?: unknown): {
  concurrency?: ConcurrencyLimit;
  rateLimit?: RateLimit;
} {
  const out: { concurrency?: ConcurrencyLimit; rateLimit?: RateLimit } = {};
  const rawKey = o.concurrencyKey ?? o.concurrency?.key;
  if (rawKey !== undefined) {
    const key = typeof rawKey === "function" ? rawKey(task) : rawKey;
    if (typeof key !== "string" || !gateName.test(key)) {
      throw ValidationError.field("concurrency.key", "must be 1 to 256 characters without control characters");
    }
    const limit = o.concurrency?.limit ?? 1;
    if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw ValidationError.field("concurrency.limit", "must be a whole number from 1 to 100000");
    out.concurrency = create(ConcurrencyLimitSchema, { key, limit });
  }
  if (o.rateLimit) {
    const { name, limit } = o.rateLimit;
    if (typeof name !== "string" || !gateName.test(name)) {
      throw ValidationError.field("rate_limit.name", "must be 1 to 256 characters without control characters");
    }
    if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw ValidationError.field("rate_limit.limit", "must be a whole number from 1 to 100000");
    const period = duration(o.rateLimit.period, "rate_limit.period", 86_400_000);
    if (!period) throw ValidationError.field("rate_limit.period", "must be 1ms to 1 day");
    out.rateLimit = create(RateLimitSchema, { name, limit, period });
  }
  return out;
}

/** A rate limit written as text: `name:N/period` (`emails:10/1s`, `api:100/1m`). */
export function parseRateLimit(text: string, field = "rate_limit"): RateLimitOption {
  const m = /^(.+):(\d+)\/(\d*(?:\.\d+)?\s*(?:ms|s|m|h|d))$/.exec(text.trim());
  if (!m) throw ValidationError.field(field, `${JSON.stringify(text)} is not a rate limit like "emails:10/1s"`);
  const period = /^\d/.test(m[3]!) ? m[3]! : `1${m[3]!}`;
  return { name: m[1]!, limit: Number(m[2]), period };
}

function priorityOf(p: number | undefined): number {
  if (p === undefined) return 0;
  if (!Number.isInteger(p) || p < 0 || p > 9) throw ValidationError.field("priority", "must be a whole number from 0 to 9");
  return p;
}

/** A job's defaults for every task that sets none (SubmitJobRequest.task_defaults). */
export function taskDefaultsMessage(o: Pick<SchedulingOptions, "timeout" | "scheduleToStartTimeout" | "retry">): TaskDefaults | undefined {
  if (o.timeout === undefined && o.scheduleToStartTimeout === undefined && o.retry?.backoff === undefined) return undefined;
  const f = schedulingFields(o);
  return create(TaskDefaultsSchema, {
    executionTimeout: f.executionTimeout,
    scheduleToStartTimeout: f.scheduleToStartTimeout,
    retryBackoff: f.retryBackoff,
  });
}
