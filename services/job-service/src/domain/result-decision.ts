// The rules a broker's task result obeys, over plain values and with no I/O: a task's current row
// and one result in, the task's next row and what must follow out (its answer to the broker, a
// retry to enqueue, subtasks to insert, a failure to weigh). Batch-wide rules (the open-task quota
// of subtasks, failures under optional branches or in canceled jobs) follow below.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ResultStatus, SpanOutcome, TaskErrorKind, type TaskResult, type TaskStarted, type TaskSubmission } from "@corral/proto";
import type { ProgressJson, TaskStateRow } from "../store/database.js";
import { CANCELED, COMPUTED, FAILED, FAILED_OPTIONAL, MAX_LEASE_EXPIRIES, QUEUED, RUNNING, SKIPPED } from "./states.js";
import { backoffDelayMs, failureKind } from "./scheduling.js";
import { quotaText } from "./team-quota.js";

/** What a result carries besides itself: found before the transaction, from the whole batch. */
export interface ResultContext {
  now: Date;
  /** Draws a retry's jitter (default Math.random). */
  random?: () => number;
  /** Why the result holds text Postgres cannot store; its task fails instead. */
  unstorable?: string;
  /** Why the result's subtasks break a rule; its task fails instead. */
  invalidSubtasks?: string;
  /** The largest output stored inline (CORRAL_MAX_OUTPUT_BYTES); unset: no limit. */
  maxOutputBytes?: number;
}

/** What an attempt returned (or a failed one left to read), to store with its result. */
export interface AttemptOutput {
  encoding: number;
  data: Uint8Array;
}

/** An attempt the result ended, as its span records it (batch rules may still change the outcome). */
export interface EndedAttempt {
  attempt: number;
  runnerId: string;
  queueTime: Date;
  start: Date | null;
  stop: Date;
  outcome: SpanOutcome;
  error: string;
}

/** One attempt's run, for the job's statistics (a start alone has no stop yet). */
export interface AttemptRun {
  start: Date | null;
  stop: Date | null;
}

export interface ResultDecision {
  /** The task after the result: the row given when nothing changed, else a new one. */
  task: TaskStateRow | undefined;
  status: ResultStatus;
  reason: string;
  /** A new attempt is queued: it goes to the outbox once its dependencies are met. */
  requeued: boolean;
  /** COMPUTED with no subtasks, or FAILED_OPTIONAL: it releases its dependants and its parent. */
  done: boolean;
  /** Failed out of retries and not optional: fails the job, unless a batch rule says otherwise. */
  failed: boolean;
  /** Subtasks reported with the completion, inserted once the team's quota admits them. */
  subtasks: TaskSubmission[];
  /** Attempt runs for the job's statistics. */
  runs: AttemptRun[];
  /** The completed attempt's output, stored keyed by its attempt. */
  output?: AttemptOutput;
  /** The failed attempt's output (within the inline limit), stored keyed by its attempt. */
  failedOutput?: AttemptOutput;
  /** The attempt this result ended. */
  ended?: EndedAttempt;
}

/** Decides one result against its task's current row (undefined: no such task). */
export function decideResult(current: TaskStateRow | undefined, result: TaskResult, ctx: ResultContext): ResultDecision {
  const d = emptyDecision(current);
  if (!current) return answer(d, ResultStatus.NOT_FOUND, "no such task");
  if (result.attempt !== current.attempt) {
    return answer(d, ResultStatus.STALE, `attempt ${result.attempt} is not the current attempt ${current.attempt}`);
  }
  // A batch the broker re-sends because our answer was lost: report the result as durable again
  // instead of stale, so the runner gets its ack. (A retried failure has a new attempt by then and
  // answers stale; its re-queued task reaches the broker through the outbox.)
  if (isDuplicate(current, result)) return answer(d, ResultStatus.APPLIED, "already applied");
  if (ctx.unstorable !== undefined) return decideUnstorable(d, current, ctx.unstorable, ctx.now);
  switch (result.outcome.case) {
    case "started":
      if (current.state !== QUEUED || current.waiting_deps > 0) return stale(d, current);
      begin(d, { ...current }, result.outcome.value, ctx.now);
      return answer(d, ResultStatus.APPLIED);
    case "completed":
      return isActive(current) ? decideCompleted(d, { ...current }, result.outcome.value, ctx) : stale(d, current);
    case "failed":
      return isActive(current) ? decideFailed(d, { ...current }, result.outcome.value, ctx) : stale(d, current);
    case "expired":
      return isActive(current) ? decideExpired(d, { ...current }, result.outcome.value.timedOut, ctx) : stale(d, current);
    default:
      return answer(d, ResultStatus.INVALID, "a result needs an outcome");
  }
}

/**
 * A completion may arrive without its start report (lost or in a later batch): a queued task whose
 * current attempt was dispatched counts as running for results.
 */
export function isActive(t: TaskStateRow): boolean {
  return t.state === RUNNING || (t.state === QUEUED && t.waiting_deps === 0);
}

type Completed = Extract<TaskResult["outcome"], { case: "completed" }>["value"];
type Failed = Extract<TaskResult["outcome"], { case: "failed" }>["value"];

function decideUnstorable(d: ResultDecision, current: TaskStateRow, why: string, now: Date): ResultDecision {
  if (!isActive(current)) return stale(d, current);
  // The attempt ends failed, not retried: the same code would report the same text again.
  const w = { ...current };
  endAttempt(d, w, now, undefined);
  w.error = `the task's result could not be stored: ${why}`;
  fail(d, w);
  settle(d, w, SpanOutcome.FAILED);
  return answer(d, ResultStatus.INVALID, w.error);
}

function decideCompleted(d: ResultDecision, w: TaskStateRow, c: Completed, ctx: ResultContext): ResultDecision {
  beginFolded(d, w, c.started, ctx.now);
  endAttempt(d, w, c.stopTime ? timestampDate(c.stopTime) : ctx.now, c.progress.map(progressJson));
  if (ctx.invalidSubtasks !== undefined) {
    w.error = ctx.invalidSubtasks;
    fail(d, w);
    settle(d, w, SpanOutcome.FAILED);
    return answer(d, ResultStatus.INVALID, ctx.invalidSubtasks);
  }
  const output = c.output;
  const size = output?.data.length ?? 0;
  if (ctx.maxOutputBytes !== undefined && size > ctx.maxOutputBytes) {
    // Not retried: the same code returns the same output again.
    w.error = outputTooLarge(size, ctx.maxOutputBytes);
    fail(d, w);
    settle(d, w, SpanOutcome.FAILED);
    return answer(d, ResultStatus.INVALID, w.error);
  }
  d.output = storedOutput(output);
  w.state = COMPUTED;
  w.error = "";
  w.error_kind = TaskErrorKind.UNSPECIFIED;
  if (c.display !== "") w.display = c.display;
  w.subtask_count = c.subtasks.length;
  w.open_children = c.subtasks.length;
  d.task = w;
  settle(d, w, SpanOutcome.COMPUTED);
  if (c.subtasks.length > 0) d.subtasks = c.subtasks;
  else d.done = true;
  return answer(d, ResultStatus.APPLIED);
}

/**
 * A failure the runner reports as its own fault (`counts_as_retry` false: shutdown, unknown
 * identifier) re-queues at once without counting; one that counts (a timeout always does) uses up
 * a retry, queued after its backoff; an unrecoverable one, or one out of retries, ends the task.
 */
function decideFailed(d: ResultDecision, w: TaskStateRow, f: Failed, ctx: ResultContext): ResultDecision {
  const { now } = ctx;
  beginFolded(d, w, f.started, now);
  endAttempt(d, w, f.stopTime ? timestampDate(f.stopTime) : now, f.progress.map(progressJson));
  w.error = f.error;
  w.error_kind = failureKind(f.kind);
  // The error stands either way: an output over the inline limit is not stored (its text says enough).
  if (ctx.maxOutputBytes === undefined || (f.output?.data.length ?? 0) <= ctx.maxOutputBytes) d.failedOutput = storedOutput(f.output);
  if (f.display !== "") w.display = f.display;
  const counts = f.countsAsRetry || w.error_kind === TaskErrorKind.TIMED_OUT;
  const timedOut = w.error_kind === TaskErrorKind.TIMED_OUT;
  if (!f.unrecoverable && !counts) {
    requeue(d, w, now);
    settle(d, w, SpanOutcome.RELEASED);
  } else if (!f.unrecoverable) {
    const retried = retryOrFail(d, w, ctx);
    settle(d, w, timedOut ? SpanOutcome.TIMED_OUT : retried ? SpanOutcome.RETRIED : SpanOutcome.FAILED);
  } else {
    fail(d, w);
    settle(d, w, SpanOutcome.FAILED);
  }
  return answer(d, ResultStatus.APPLIED);
}

/**
 * A lease that expires counts against its own cap (MAX_LEASE_EXPIRIES), not against max_retries;
 * one that ended at the attempt's execution deadline is a timeout and counts as a retry.
 */
function decideExpired(d: ResultDecision, w: TaskStateRow, timedOut: boolean, ctx: ResultContext): ResultDecision {
  endAttempt(d, w, ctx.now, undefined);
  if (timedOut) {
    w.error = `the attempt ran past its execution timeout of ${w.exec_timeout_ms / 1000} s and its runner did not stop it`;
    w.error_kind = TaskErrorKind.TIMED_OUT;
    retryOrFail(d, w, ctx);
    settle(d, w, SpanOutcome.TIMED_OUT);
    return answer(d, ResultStatus.APPLIED);
  }
  w.lease_expiry_count += 1;
  w.error_kind = TaskErrorKind.LEASE_EXPIRED;
  if (w.lease_expiry_count > MAX_LEASE_EXPIRIES) {
    w.error = `the lease expired ${w.lease_expiry_count} times`;
    fail(d, w);
  } else requeue(d, w, ctx.now);
  settle(d, w, SpanOutcome.LEASE_EXPIRED, "the runner stopped heartbeating and its lease expired");
  return answer(d, ResultStatus.APPLIED);
}

/** An output worth a row: unset, or empty with no encoding, is none. */
function storedOutput(output: AttemptOutput | undefined): AttemptOutput | undefined {
  return output && (output.encoding !== 0 || output.data.length > 0) ? { encoding: output.encoding, data: output.data } : undefined;
}

/** The error of a task whose output is over the inline limit; names the limit and its setting. */
export function outputTooLarge(size: number, limit: number): string {
  return `the task's output is ${size} bytes, over the limit of ${limit} bytes (CORRAL_MAX_OUTPUT_BYTES)`;
}

/** Uses up a retry, queued once its backoff has passed; out of retries, the task fails. Returns whether it retries. */
function retryOrFail(d: ResultDecision, w: TaskStateRow, ctx: ResultContext): boolean {
  if (w.retry_count >= w.max_retries) {
    fail(d, w);
    return false;
  }
  w.retry_count += 1;
  requeue(d, w, ctx.now);
  if (w.retry_backoff) w.not_before = new Date(ctx.now.getTime() + backoffDelayMs(w.retry_backoff, w.retry_count, ctx.random));
  return true;
}

function isDuplicate(t: TaskStateRow, r: TaskResult): boolean {
  switch (r.outcome.case) {
    case "started":
      return (
        (t.state === RUNNING || t.state === COMPUTED || t.state === FAILED || t.state === FAILED_OPTIONAL) &&
        t.runner_id === r.outcome.value.runnerId
      );
    case "completed":
      return t.state === COMPUTED;
    case "failed":
      return (t.state === FAILED || t.state === FAILED_OPTIONAL) && t.error === r.outcome.value.error;
    default:
      return false;
  }
}

function emptyDecision(task: TaskStateRow | undefined): ResultDecision {
  return { task, status: ResultStatus.UNSPECIFIED, reason: "", requeued: false, done: false, failed: false, subtasks: [], runs: [] };
}

function answer(d: ResultDecision, status: ResultStatus, reason = ""): ResultDecision {
  d.status = status;
  d.reason = reason;
  return d;
}

function stale(d: ResultDecision, t: TaskStateRow): ResultDecision {
  const waits = t.state === QUEUED && t.waiting_deps > 0 ? " and waits for dependencies" : "";
  return answer(d, ResultStatus.STALE, `the task is ${stateName(t.state)}${waits}`);
}

function begin(d: ResultDecision, w: TaskStateRow, s: TaskStarted, now: Date): void {
  w.state = RUNNING;
  w.runner_id = s.runnerId;
  w.start_time = s.startTime ? timestampDate(s.startTime) : now;
  w.stop_time = null;
  w.error = "";
  d.runs.push({ start: w.start_time, stop: null });
  d.task = w;
}

/** An end that carries its attempt's start (never sent on its own): apply the start first. */
function beginFolded(d: ResultDecision, w: TaskStateRow, s: TaskStarted | undefined, now: Date): void {
  if (s && w.state === QUEUED && w.waiting_deps === 0) begin(d, w, s, now);
}

function endAttempt(d: ResultDecision, w: TaskStateRow, stop: Date, progress: ProgressJson[] | undefined): void {
  d.ended = {
    attempt: w.attempt,
    runnerId: w.runner_id,
    queueTime: w.queue_time,
    start: w.start_time,
    stop,
    outcome: SpanOutcome.UNSPECIFIED,
    error: "",
  };
  w.stop_time = stop;
  if (w.start_time) w.compute_ms += Math.max(0, stop.getTime() - w.start_time.getTime());
  d.runs.push({ start: w.start_time, stop });
  // Progress is per task and only the last reported attempt counts; none is null, which keeps the
  // task out of the job's progress index (tasks_job_progress).
  if (progress) w.progress = progress.length > 0 ? progress : null;
  d.task = w;
}

/** The ended attempt's outcome and error, once the rules above have decided them. */
function settle(d: ResultDecision, w: TaskStateRow, outcome: SpanOutcome, fallbackError = ""): void {
  if (!d.ended) return;
  d.ended.outcome = outcome;
  d.ended.error = outcome === SpanOutcome.COMPUTED ? "" : w.error || fallbackError;
}

function requeue(d: ResultDecision, w: TaskStateRow, now: Date): void {
  w.attempt += 1;
  w.queue_time = now;
  w.state = QUEUED;
  w.start_time = null;
  w.runner_id = "";
  w.not_before = null;
  d.requeued = true;
}

/** Out of retries: an optional task fails alone, any other one fails (see settleFailures). */
function fail(d: ResultDecision, w: TaskStateRow): void {
  if (w.optional) {
    w.state = FAILED_OPTIONAL;
    d.done = true;
  } else {
    w.state = FAILED;
    d.failed = true;
  }
  d.task = w;
}

function stateName(state: number): string {
  return ["unspecified", "queued", "running", "computed", "failed", "skipped", "failed optional", "canceled"][state] ?? String(state);
}

function progressJson(p: { label: string; total: bigint; done: bigint }): ProgressJson {
  return { label: p.label, total: Number(p.total), done: Number(p.done) };
}

// ---- Batch-wide rules --------------------------------------------------------------------------

/** A completion's subtasks waiting for the quota's word. */
export interface SubtaskRequest {
  parentId: string;
  teamId: string;
  count: number;
}

/**
 * Subtasks count against their team's quota of open (queued + running) tasks, with what the batch
 * already changed (`openChange`, per team). Requests are admitted in order; one that does not fit
 * is refused with the limit named. `open` is each team's count before the batch.
 */
export function admitSubtasks(
  requests: readonly SubtaskRequest[],
  open: ReadonlyMap<string, number>,
  openChange: ReadonlyMap<string, number>,
  maxOpenTasks: number,
): { admitted: Set<string>; refused: Map<string, string> } {
  const count = new Map<string, number>();
  for (const [team, n] of open) count.set(team, n + (openChange.get(team) ?? 0));
  const admitted = new Set<string>();
  const refused = new Map<string, string>();
  for (const r of requests) {
    const current = count.get(r.teamId) ?? 0;
    if (current + r.count <= maxOpenTasks) {
      count.set(r.teamId, current + r.count);
      admitted.add(r.parentId);
    } else refused.set(r.parentId, `its ${r.count} subtasks would exceed ${quotaText(maxOpenTasks, current)}`);
  }
  return { admitted, refused };
}

/** A parent whose subtasks were refused fails like one with invalid subtasks. */
export function refuseSubtasks(task: TaskStateRow, why: string): { task: TaskStateRow; done: boolean; failed: boolean } {
  const d = emptyDecision(task);
  const w = { ...task, error: why, subtask_count: 0, open_children: 0 };
  fail(d, w);
  return { task: w, done: d.done, failed: d.failed };
}

/** 1 for a state the quota counts as open. */
export function openCount(state: number): number {
  return state === QUEUED || state === RUNNING ? 1 : 0;
}

export type FailureVerdict =
  /** Under an optional ancestor: that branch fails (the root), not the job. */
  | { kind: "branch"; root: string }
  /** A running task of a canceled job stopped by the cancel (its signal aborted). */
  | { kind: "canceled" }
  /** The job fails. */
  | { kind: "job" };

/** What a non-optional task out of retries fails: its optional branch, nothing (canceled job), or its job. */
export function weighFailure(optionalAncestor: string | undefined, jobCanceled: boolean): FailureVerdict {
  if (optionalAncestor !== undefined) return { kind: "branch", root: optionalAncestor };
  return jobCanceled ? { kind: "canceled" } : { kind: "job" };
}

/** The state a failed task ends in for each verdict. */
export function failedState(v: FailureVerdict): number {
  return v.kind === "branch" ? FAILED_OPTIONAL : v.kind === "canceled" ? CANCELED : FAILED;
}

/** Whether the broker should tell the runner its task was canceled, as the batch left things. */
export function isCanceledForRunner(task: TaskStateRow, jobCanceled: boolean, stoppedByBatch: boolean): boolean {
  return jobCanceled || stoppedByBatch || task.state === CANCELED || task.state === SKIPPED;
}

/** Whether the state machine's columns differ (only changed rows are written). */
export function isTaskChanged(a: TaskStateRow, b: TaskStateRow): boolean {
  return (
    a.state !== b.state ||
    a.attempt !== b.attempt ||
    a.retry_count !== b.retry_count ||
    a.lease_expiry_count !== b.lease_expiry_count ||
    a.open_children !== b.open_children ||
    a.subtask_count !== b.subtask_count ||
    a.runner_id !== b.runner_id ||
    a.start_time?.getTime() !== b.start_time?.getTime() ||
    a.stop_time?.getTime() !== b.stop_time?.getTime() ||
    a.error !== b.error ||
    a.display !== b.display ||
    a.progress !== b.progress ||
    a.compute_ms !== b.compute_ms ||
    a.not_before?.getTime() !== b.not_before?.getTime() ||
    a.error_kind !== b.error_kind
  );
}
