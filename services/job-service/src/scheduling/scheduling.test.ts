// Scheduling controls against the real database, on an injected clock: delayed starts, retry
// backoff (kept across a restart), timeouts as their own error kind, schedule-to-start deadlines
// and the job's defaults.
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  JobState,
  LeaseExpiredSchema,
  ResultStatus,
  RetryBackoffSchema,
  TaskDefaultsSchema,
  TaskErrorKind,
  TaskFailedSchema,
  TaskResultSchema,
  TaskState,
  type TaskEnvelope,
  type TaskResult,
} from "@corral/proto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { toTask } from "../domain/convert.js";
import { createJobLedger, type JobLedger } from "../job-ledger.js";
import { findTasks } from "../store/task-query-repository.js";
import {
  completed,
  createJobsTestDb,
  createRecordingDispatcher,
  createTestClusters,
  failed,
  started,
  task,
  type JobsTestDb,
  type RecordingDispatcher,
} from "../testing/job-test-kit.js";

let t: JobsTestDb;
let dispatcher: RecordingDispatcher;
let ledger: JobLedger;
let clock: Date;
const team = "team-sched";
const at = (ms: number) => new Date(clock.getTime() + ms);

function newLedger() {
  return createJobLedger({ db: t.db, clusters: createTestClusters(), dispatcher, sweepAfterMs: 60_000, now: () => clock });
}

beforeAll(async () => {
  t = await createJobsTestDb("jobs_scheduling");
  dispatcher = createRecordingDispatcher();
  ledger = newLedger();
});
beforeEach(() => {
  clock = new Date();
});
afterAll(async () => {
  await ledger?.relay.close();
  await t?.close();
});

const sentFor = (jobId: string) => dispatcher.enqueued.filter((e) => e.jobId === jobId);
const backoff = (initialMs: number, multiplier: number, maxMs: number, jitter = 0) =>
  create(RetryBackoffSchema, { initialInterval: durationFromMs(initialMs), multiplier, maximumInterval: durationFromMs(maxMs), jitter });

async function taskOf(jobId: string, id: string) {
  const rows = await findTasks(t.db, jobId, [id]);
  return toTask(rows[0]!, clock);
}

function timedOut(e: TaskEnvelope, via: "runner" | "lease"): TaskResult {
  return create(TaskResultSchema, {
    taskId: e.taskId,
    attempt: e.attempt,
    outcome:
      via === "runner"
        ? { case: "failed", value: create(TaskFailedSchema, { error: "timed out", kind: TaskErrorKind.TIMED_OUT }) }
        : { case: "expired", value: create(LeaseExpiredSchema, { timedOut: true }) },
  });
}

describe("delayed start", () => {
  it("holds a task with start_delay in the outbox and sends it only once its time has come", async () => {
    const { job } = await ledger.submitJob({
      teamId: team,
      name: "later",
      clusterSlug: "",
      tasks: [task("later", { startDelay: durationFromMs(60_000) })],
    });
    expect(sentFor(job.id)).toHaveLength(0);
    const start = clock;
    clock = new Date(start.getTime() + 59_999);
    await ledger.relay.sweepOnce();
    expect(sentFor(job.id)).toHaveLength(0);
    const { id } = await t.db.selectFrom("tasks").select("id").where("job_id", "=", job.id).executeTakeFirstOrThrow();
    expect((await taskOf(job.id, id)).waitReason).toBe(`delayed until ${new Date(start.getTime() + 60_000).toISOString()}`);
    clock = new Date(start.getTime() + 60_000);
    await ledger.relay.sweepOnce();
    expect(sentFor(job.id)).toHaveLength(1);
  });

  it("holds a subtask with not_before until then, and starts its undelayed siblings at once", async () => {
    const { job } = await ledger.submitJob({ teamId: team, name: "subs", clusterSlug: "", tasks: [task("p")] });
    const p = sentFor(job.id)[0]!;
    const out = await ledger.reportResults({
      results: [started(p), completed(p, { subtasks: [task("now"), task("soon", { notBefore: timestampFromDate(at(5_000)) })] })],
    });
    expect(out.ready.map((e) => e.display)).toEqual(["now"]);
    await ledger.relay.sweepOnce();
    expect(sentFor(job.id).map((e) => e.display)).toEqual(["p"]);
    clock = at(5_000);
    await ledger.relay.sweepOnce();
    expect(sentFor(job.id).map((e) => e.display)).toEqual(["p", "soon"]);
  });
});

describe("retry backoff", () => {
  it("queues each retry after min(initial * multiplier^(n-1), maximum)", async () => {
    const { job } = await ledger.submitJob({
      teamId: team,
      name: "backoff",
      clusterSlug: "",
      tasks: [task("flaky", { maxRetries: 4, retryBackoff: backoff(1_000, 2, 3_000) })],
    });
    const expected = [1_000, 2_000, 3_000, 3_000];
    let e = sentFor(job.id)[0]!;
    for (const delay of expected) {
      const failedAt = clock;
      const out = await ledger.reportResults({ results: [started(e), failed(e)] });
      expect(out.ready).toHaveLength(0);
      const view = await taskOf(job.id, e.taskId);
      expect(view.notBefore).toEqual(timestampFromDate(new Date(failedAt.getTime() + delay)));
      clock = new Date(failedAt.getTime() + delay - 1);
      await ledger.relay.sweepOnce();
      expect(sentFor(job.id).filter((x) => x.attempt === e.attempt + 1)).toHaveLength(0);
      clock = new Date(failedAt.getTime() + delay);
      await ledger.relay.sweepOnce();
      const next = sentFor(job.id).filter((x) => x.attempt === e.attempt + 1);
      expect(next).toHaveLength(1);
      e = next[0]!;
    }
    await ledger.reportResults({ results: [started(e), failed(e)] });
    expect((await ledger.getJob(team, job.id)).job.state).toBe(JobState.FAILED);
  });

  it("keeps a retry's backoff across a job-service restart", async () => {
    const { job } = await ledger.submitJob({
      teamId: team,
      name: "restart",
      clusterSlug: "",
      tasks: [task("flaky", { maxRetries: 1, retryBackoff: backoff(30_000, 2, 60_000) })],
    });
    const e = sentFor(job.id)[0]!;
    await ledger.reportResults({ results: [started(e), failed(e)] });
    await ledger.relay.close();
    ledger = newLedger();
    clock = at(29_999);
    await ledger.relay.sweepOnce();
    expect(sentFor(job.id)).toHaveLength(1);
    clock = at(1);
    await ledger.relay.sweepOnce();
    expect(sentFor(job.id).map((x) => x.attempt)).toEqual([1, 2]);
  });

  it("retries at once when the runner's own fault re-queues the task", async () => {
    const { job } = await ledger.submitJob({
      teamId: team,
      name: "runner fault",
      clusterSlug: "",
      tasks: [task("t", { maxRetries: 1, retryBackoff: backoff(30_000, 2, 60_000) })],
    });
    const e = sentFor(job.id)[0]!;
    const out = await ledger.reportResults({ results: [started(e), failed(e, { countsAsRetry: false })] });
    expect(out.ready.map((x) => x.attempt)).toEqual([2]);
  });
});

describe("execution timeout", () => {
  it("carries the task's timeout, else the job's default, to the runner, subtasks included", async () => {
    const { job } = await ledger.submitJob({
      teamId: team,
      name: "defaults",
      clusterSlug: "",
      tasks: [task("own", { executionTimeout: durationFromMs(2_000) }), task("default")],
      taskDefaults: create(TaskDefaultsSchema, { executionTimeout: durationFromMs(5_000) }),
    });
    const [own, def] = sentFor(job.id);
    expect(own!.executionTimeout).toEqual(durationFromMs(2_000));
    expect(def!.executionTimeout).toEqual(durationFromMs(5_000));
    const out = await ledger.reportResults({ results: [started(def!), completed(def!, { subtasks: [task("sub")] })] });
    expect(out.ready[0]!.executionTimeout).toEqual(durationFromMs(5_000));
  });

  it("fails a timed-out attempt as TIMED_OUT, counted against max_retries, with or without the runner's word", async () => {
    const { job } = await ledger.submitJob({
      teamId: team,
      name: "timeouts",
      clusterSlug: "",
      tasks: [task("slow", { maxRetries: 1, executionTimeout: durationFromMs(1_000) })],
    });
    const e1 = sentFor(job.id)[0]!;
    // The runner noticed (its own fault flag does not spare the retry).
    const first = await ledger.reportResults({ results: [started(e1), { ...timedOut(e1, "runner") }] });
    const e2 = first.ready[0]!;
    expect(e2.retryCount).toBe(1);
    expect((await taskOf(job.id, e1.taskId)).errorKind).toBe(TaskErrorKind.TIMED_OUT);
    // The runner ignored its signal: the broker's lease ended at the deadline.
    await ledger.reportResults({ results: [started(e2), timedOut(e2, "lease")] });
    const view = await taskOf(job.id, e1.taskId);
    expect(view.state).toBe(TaskState.FAILED);
    expect(view.errorKind).toBe(TaskErrorKind.TIMED_OUT);
    expect(view.leaseExpiryCount).toBe(0);
    // Its late result is stale.
    const late = await ledger.reportResults({ results: [completed(e2)] });
    expect(late.outcomes[0]!.status).toBe(ResultStatus.STALE);
  });
});

describe("priority", () => {
  it("carries each task's priority to the broker and into the task view", async () => {
    const { job } = await ledger.submitJob({ teamId: team, name: "prio", clusterSlug: "", tasks: [task("hi", { priority: 9 }), task("lo")] });
    const [hi, lo] = sentFor(job.id);
    expect([hi!.priority, lo!.priority]).toEqual([9, 0]);
    const out = await ledger.reportResults({ results: [started(hi!), completed(hi!, { subtasks: [task("sub", { priority: 4 })] })] });
    expect(out.ready[0]!.priority).toBe(4);
    expect((await taskOf(job.id, hi!.taskId)).priority).toBe(9);
  });

  it("refuses a priority above 9, naming the field", async () => {
    await expect(ledger.submitJob({ teamId: team, name: "prio", clusterSlug: "", tasks: [task("x", { priority: 10 })] })).rejects.toThrow(
      /tasks\[0\]\.priority/,
    );
  });
});

describe("schedule-to-start timeout", () => {
  it("fails a task no runner took in time, ends its job and revokes its queued entry", async () => {
    const { job } = await ledger.submitJob({
      teamId: team,
      name: "nobody home",
      clusterSlug: "",
      tasks: [task("lonely", { scheduleToStartTimeout: durationFromMs(30_000) })],
    });
    const e = sentFor(job.id)[0]!;
    const start = clock;
    clock = new Date(start.getTime() + 29_999);
    expect(await ledger.startTimeouts.sweepOnce()).toBe(0);
    clock = new Date(start.getTime() + 30_000);
    expect(await ledger.startTimeouts.sweepOnce()).toBe(1);
    const view = await taskOf(job.id, e.taskId);
    expect(view.state).toBe(TaskState.FAILED);
    expect(view.errorKind).toBe(TaskErrorKind.SCHEDULE_TO_START_TIMED_OUT);
    expect((await ledger.getJob(team, job.id)).job.state).toBe(JobState.FAILED);
    expect(dispatcher.revoked.some((r) => r.jobId === job.id)).toBe(true);
    // A runner that claimed the entry anyway reports into a failed task.
    const late = await ledger.reportResults({ results: [started(e)] });
    expect(late.outcomes[0]!.status).toBe(ResultStatus.STALE);
  });

  it("sends what a timed-out optional task releases at once, not after the outbox sweep", async () => {
    const { job } = await ledger.submitJob({
      teamId: team,
      name: "optional timeout",
      clusterSlug: "",
      tasks: [task("maybe", { optional: true, scheduleToStartTimeout: durationFromMs(5_000) }), task("after", { dependsOn: [0] })],
    });
    expect(sentFor(job.id).map((e) => e.display)).toEqual(["maybe"]);
    clock = new Date(clock.getTime() + 5_000);
    expect(await ledger.startTimeouts.sweepOnce()).toBe(1);
    // The dependant went to the broker with the sweep: no outbox sweep ran.
    expect(sentFor(job.id).map((e) => e.display)).toEqual(["maybe", "after"]);
  });

  it("starts a delayed task's clock at its start time and a dependant's when it becomes ready", async () => {
    const { job } = await ledger.submitJob({
      teamId: team,
      name: "deadline",
      clusterSlug: "",
      tasks: [task("a"), task("b", { dependsOn: [0] })],
      taskDefaults: create(TaskDefaultsSchema, { scheduleToStartTimeout: durationFromMs(10_000) }),
    });
    const a = sentFor(job.id)[0]!;
    clock = at(9_000);
    await ledger.reportResults({ results: [started(a)] });
    clock = at(20_000);
    const out = await ledger.reportResults({ results: [completed(a)] });
    const b = out.ready[0]!;
    expect((await taskOf(job.id, b.taskId)).startDeadline).toEqual(timestampFromDate(at(10_000)));
    clock = at(9_999);
    expect(await ledger.startTimeouts.sweepOnce()).toBe(0);
    await ledger.reportResults({ results: [started(b), completed(b)] });
    clock = at(60_000);
    expect(await ledger.startTimeouts.sweepOnce()).toBe(0);
    expect((await ledger.getJob(team, job.id)).job.state).toBe(JobState.COMPLETED);
  });
});
