// The per-result rules as a table: one row per rule, a task's row and a result in, the decision out.
// Pure: no database (the set-based application is covered by apply-results.test.ts).
import { create } from "@bufbuild/protobuf";
import { ResultStatus, TaskResultSchema, type TaskResult } from "@corral/proto";
import { describe, expect, it } from "vitest";
import type { TaskStateRow } from "../store/database.js";
import { completed, expired, failed, started, task } from "../testing/job-test-kit.js";
import {
  admitSubtasks,
  decideResult,
  failedState,
  isCanceledForRunner,
  refuseSubtasks,
  weighFailure,
  type ResultContext,
  type ResultDecision,
} from "./result-decision.js";
import { CANCELED, COMPUTED, FAILED, FAILED_OPTIONAL, MAX_LEASE_EXPIRIES, QUEUED, RUNNING, SKIPPED } from "./states.js";

const now = new Date(1_000_000);
const startedAt = new Date(990_000);

function row(over: Partial<TaskStateRow> = {}): TaskStateRow {
  return {
    id: "t1",
    job_id: "j1",
    parent_id: null,
    identifier_name: "work",
    identifier_version: "v1.0",
    queue_time: new Date(980_000),
    state: RUNNING,
    attempt: 1,
    retry_count: 0,
    lease_expiry_count: 0,
    max_retries: 0,
    optional: false,
    waiting_deps: 0,
    has_dependants: false,
    open_children: 0,
    subtask_count: 0,
    runner_id: "runner-1",
    start_time: startedAt,
    stop_time: null,
    error: "",
    display: "t1",
    progress: null,
    compute_ms: 0,
    cluster_id: "c1",
    cluster_slug: "default",
    exec_timeout_ms: 0,
    start_timeout_ms: 0,
    retry_backoff: null,
    not_before: null,
    error_kind: 0,
    ...over,
  };
}

const target = { taskId: "t1", attempt: 1 };

interface Rule {
  rule: string;
  task: TaskStateRow | undefined;
  result: TaskResult;
  ctx?: Partial<ResultContext>;
  expect: {
    status: ResultStatus;
    reason?: string | RegExp;
    task?: Partial<TaskStateRow>;
    requeued?: boolean;
    done?: boolean;
    failed?: boolean;
    subtasks?: number;
    unchanged?: boolean;
  };
}

const rules: Rule[] = [
  { rule: "a result for a task that does not exist answers NOT_FOUND", task: undefined, result: completed(target), expect: { status: ResultStatus.NOT_FOUND, reason: "no such task" } },
  {
    rule: "a result of an attempt that is not the current one is STALE (fencing token)",
    task: row({ attempt: 2 }),
    result: completed(target),
    expect: { status: ResultStatus.STALE, reason: "attempt 1 is not the current attempt 2", unchanged: true },
  },
  {
    rule: "a start of a queued, dispatched task makes it RUNNING on that runner",
    task: row({ state: QUEUED, runner_id: "", start_time: null }),
    result: started(target, "runner-9", 995_000),
    expect: { status: ResultStatus.APPLIED, task: { state: RUNNING, runner_id: "runner-9", start_time: new Date(995_000), error: "" } },
  },
  {
    rule: "a start of a task still waiting for dependencies is STALE",
    task: row({ state: QUEUED, waiting_deps: 1 }),
    result: started(target),
    expect: { status: ResultStatus.STALE, reason: "the task is queued and waits for dependencies", unchanged: true },
  },
  {
    rule: "a start re-sent by the broker for a task already running on that runner is APPLIED again",
    task: row(),
    result: started(target, "runner-1"),
    expect: { status: ResultStatus.APPLIED, reason: "already applied", unchanged: true },
  },
  {
    rule: "a completion makes the task COMPUTED and done, with its stop, compute time and progress",
    task: row(),
    result: completed(target, { progress: [{ label: "tiles", total: 2, done: 2 }], display: "shown" }),
    expect: {
      status: ResultStatus.APPLIED,
      done: true,
      task: { state: COMPUTED, stop_time: now, compute_ms: 10_000, display: "shown", progress: [{ label: "tiles", total: 2, done: 2 }] },
    },
  },
  {
    rule: "a completion without its start report counts for a queued, dispatched task",
    task: row({ state: QUEUED, start_time: null, runner_id: "" }),
    result: completed(target),
    expect: { status: ResultStatus.APPLIED, done: true, task: { state: COMPUTED } },
  },
  {
    rule: "a completion with subtasks is COMPUTED but not done until they are, and asks for them",
    task: row(),
    result: completed(target, { subtasks: [task("a"), task("b")] }),
    expect: { status: ResultStatus.APPLIED, done: false, subtasks: 2, task: { state: COMPUTED, subtask_count: 2, open_children: 2 } },
  },
  {
    rule: "a completion re-sent for a COMPUTED task is APPLIED again",
    task: row({ state: COMPUTED }),
    result: completed(target),
    expect: { status: ResultStatus.APPLIED, reason: "already applied", unchanged: true },
  },
  {
    rule: "a completion whose subtasks break a rule fails the task as INVALID",
    task: row(),
    result: completed(target, { subtasks: [task("a")] }),
    ctx: { invalidSubtasks: "results[0].completed.subtasks[0].input: too large" },
    expect: { status: ResultStatus.INVALID, reason: /input: too large/, failed: true, subtasks: 0, task: { state: FAILED } },
  },
  {
    rule: "a completion of a task that is not running is STALE",
    task: row({ state: FAILED }),
    result: completed(target),
    expect: { status: ResultStatus.STALE, reason: "the task is failed", unchanged: true },
  },
  {
    rule: "a runner fault (counts_as_retry false) re-queues a new attempt without using a retry",
    task: row({ max_retries: 0 }),
    result: failed(target, { countsAsRetry: false, error: "runner shut down" }),
    expect: { status: ResultStatus.APPLIED, requeued: true, task: { state: QUEUED, attempt: 2, retry_count: 0, runner_id: "", start_time: null, error: "runner shut down" } },
  },
  {
    rule: "a failure that counts uses up a retry and re-queues while retries are left",
    task: row({ max_retries: 2, retry_count: 1 }),
    result: failed(target),
    expect: { status: ResultStatus.APPLIED, requeued: true, task: { state: QUEUED, attempt: 2, retry_count: 2 } },
  },
  {
    rule: "a failure out of retries fails the task",
    task: row({ max_retries: 1, retry_count: 1 }),
    result: failed(target, { error: "boom" }),
    expect: { status: ResultStatus.APPLIED, failed: true, task: { state: FAILED, error: "boom", attempt: 1 } },
  },
  {
    rule: "an unrecoverable failure fails the task with retries left",
    task: row({ max_retries: 5 }),
    result: failed(target, { unrecoverable: true }),
    expect: { status: ResultStatus.APPLIED, failed: true, task: { state: FAILED, retry_count: 0 } },
  },
  {
    rule: "an optional task out of retries becomes FAILED_OPTIONAL and is done (its dependants still run)",
    task: row({ optional: true }),
    result: failed(target),
    expect: { status: ResultStatus.APPLIED, done: true, failed: false, task: { state: FAILED_OPTIONAL } },
  },
  {
    rule: "a failure re-sent for a task that failed with the same error is APPLIED again",
    task: row({ state: FAILED, error: "boom" }),
    result: failed(target, { error: "boom" }),
    expect: { status: ResultStatus.APPLIED, reason: "already applied", unchanged: true },
  },
  {
    rule: "an expired lease re-queues a new attempt and counts against the lease-expiry cap, not retries",
    task: row({ lease_expiry_count: 3 }),
    result: expired(target),
    expect: { status: ResultStatus.APPLIED, requeued: true, task: { state: QUEUED, attempt: 2, lease_expiry_count: 4, retry_count: 0, stop_time: now } },
  },
  {
    rule: `a lease that expires more than ${MAX_LEASE_EXPIRIES} times fails the task`,
    task: row({ lease_expiry_count: MAX_LEASE_EXPIRIES }),
    result: expired(target),
    expect: { status: ResultStatus.APPLIED, failed: true, task: { state: FAILED, error: `the lease expired ${MAX_LEASE_EXPIRIES + 1} times` } },
  },
  {
    rule: "a result holding text Postgres cannot store fails its task as INVALID, not retried",
    task: row({ max_retries: 3 }),
    result: completed(target),
    ctx: { unstorable: "completed.display contains a NUL character (0x00), which cannot be stored" },
    expect: { status: ResultStatus.INVALID, reason: /could not be stored: completed\.display/, failed: true, task: { state: FAILED, attempt: 1 } },
  },
  {
    rule: "an unstorable result for a task that is not running is STALE",
    task: row({ state: COMPUTED }),
    result: failed(target),
    ctx: { unstorable: "failed.error contains a NUL character" },
    expect: { status: ResultStatus.STALE, unchanged: true },
  },
  {
    rule: "a result without an outcome is INVALID",
    task: row(),
    result: create(TaskResultSchema, { taskId: "t1", attempt: 1 }),
    expect: { status: ResultStatus.INVALID, reason: "a result needs an outcome", unchanged: true },
  },
];

describe("decideResult", () => {
  it.each(rules.map((r) => [r.rule, r] as const))("%s", (_, r) => {
    const before = r.task === undefined ? undefined : structuredClone(r.task);
    const d: ResultDecision = decideResult(r.task, r.result, { now, ...r.ctx });
    expect(d.status).toBe(r.expect.status);
    if (typeof r.expect.reason === "string") expect(d.reason).toBe(r.expect.reason);
    else if (r.expect.reason) expect(d.reason).toMatch(r.expect.reason);
    expect(d.requeued).toBe(r.expect.requeued ?? false);
    expect(d.done).toBe(r.expect.done ?? false);
    expect(d.failed).toBe(r.expect.failed ?? false);
    expect(d.subtasks).toHaveLength(r.expect.subtasks ?? 0);
    if (r.expect.task) expect(d.task).toMatchObject(r.expect.task);
    if (r.expect.unchanged) expect(d.task).toBe(r.task);
    // The row given is never written to: the decision is a new row.
    expect(r.task).toEqual(before);
  });
});

describe("batch rules", () => {
  it("admits subtasks in order while the team's open tasks, with the batch's changes, stay within the quota", () => {
    const requests = [
      { parentId: "p1", teamId: "a", count: 3 },
      { parentId: "p2", teamId: "a", count: 2 },
      { parentId: "p3", teamId: "b", count: 1 },
    ];
    // Team a: 4 open, the batch ended one running task (-1): 3 + 3 fits 6, then 6 + 2 does not.
    const { admitted, refused } = admitSubtasks(requests, new Map([["a", 4], ["b", 0]]), new Map([["a", -1]]), 6);
    expect([...admitted]).toEqual(["p1", "p3"]);
    expect(refused.get("p2")).toMatch(/^its 2 subtasks would exceed the team's quota of 6 open tasks .*; 6 are open now$/);
  });

  it("fails a parent whose subtasks the quota refused, like one with invalid subtasks", () => {
    const parent = row({ state: COMPUTED, subtask_count: 2, open_children: 2 });
    expect(refuseSubtasks(parent, "over quota")).toEqual({
      task: { ...parent, state: FAILED, error: "over quota", subtask_count: 0, open_children: 0 },
      done: false,
      failed: true,
    });
    expect(refuseSubtasks({ ...parent, optional: true }, "over quota")).toMatchObject({ task: { state: FAILED_OPTIONAL }, done: true, failed: false });
  });

  it("a failure under an optional ancestor fails that branch, not the job", () => {
    const v = weighFailure("root-1", false);
    expect(v).toEqual({ kind: "branch", root: "root-1" });
    expect(failedState(v)).toBe(FAILED_OPTIONAL);
  });

  it("a failure in a canceled job was caused by the cancel: the task ends CANCELED", () => {
    expect(failedState(weighFailure(undefined, true))).toBe(CANCELED);
  });

  it("any other failure out of retries fails the job", () => {
    const v = weighFailure(undefined, false);
    expect(v).toEqual({ kind: "job" });
    expect(failedState(v)).toBe(FAILED);
  });

  it("tells the runner its task was canceled when the job is canceled or the batch stopped, canceled or skipped it", () => {
    expect(isCanceledForRunner(row(), true, false)).toBe(true);
    expect(isCanceledForRunner(row(), false, true)).toBe(true);
    expect(isCanceledForRunner(row({ state: CANCELED }), false, false)).toBe(true);
    expect(isCanceledForRunner(row({ state: SKIPPED }), false, false)).toBe(true);
    expect(isCanceledForRunner(row({ state: COMPUTED }), false, false)).toBe(false);
  });
});
