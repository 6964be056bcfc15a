import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { DispatchAckSchema, JobState, ResultStatus, TaskStartedSchema, TaskState, type TaskEnvelope } from "@corral/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobLedger, type JobLedger } from "../job-ledger.js";
import {
  completed,
  createJobsTestDb,
  createRecordingDispatcher,
  createTestClusters,
  expired,
  failed,
  started,
  task,
  type JobsTestDb,
  type RecordingDispatcher,
} from "../testing/job-test-kit.js";
import { MAX_LEASE_EXPIRIES } from "./states.js";

let t: JobsTestDb;
let dispatcher: RecordingDispatcher;
let ledger: JobLedger;
const team = "team-a";

beforeAll(async () => {
  t = await createJobsTestDb("jobs_apply");
  dispatcher = createRecordingDispatcher();
  ledger = createJobLedger({ db: t.db, clusters: createTestClusters(), dispatcher });
});
afterAll(async () => {
  await t?.close();
});

async function submit(tasks: Parameters<typeof task>[] | ReturnType<typeof task>[], clusterSlug = "") {
  dispatcher.enqueued.length = 0;
  const subs = tasks.map((x) => (Array.isArray(x) ? task(...x) : x));
  const { job } = await ledger.submitJob({ teamId: team, name: "job", clusterSlug, tasks: subs });
  return { jobId: job.id, ready: [...dispatcher.enqueued] };
}

function pick(ready: TaskEnvelope[], display: string): TaskEnvelope {
  const e = ready.find((r) => r.display === display);
  if (!e) throw new Error(`${display} is not ready (ready: ${ready.map((r) => r.display).join(", ")})`);
  return e;
}

async function run(e: TaskEnvelope, options: Parameters<typeof completed>[1] = {}) {
  return ledger.reportResults({ results: [started(e), completed(e, options)] });
}

async function states(jobId: string): Promise<Record<string, number>> {
  const rows = await t.db.selectFrom("tasks").select(["display", "state"]).where("job_id", "=", jobId).execute();
  return Object.fromEntries(rows.map((r) => [r.display, r.state]));
}

async function jobState(jobId: string) {
  return (await ledger.getJob(team, jobId)).job;
}

const names = (ready: TaskEnvelope[]) => ready.map((r) => r.display).sort();

describe("applyResults", () => {
  it("applies a start folded into its task's end: runner, start time and compute time", async () => {
    const { jobId, ready } = await submit([["folded-ok"], ["folded-fail", { maxRetries: 0 }]]);
    const start = (e: TaskEnvelope, ms: number) => {
      const s = started(e, "runner-folded");
      if (s.outcome.case !== "started") throw new Error("unreachable");
      return { ...s.outcome.value, startTime: timestampFromMs(ms) };
    };
    const ok = completed(pick(ready, "folded-ok"));
    const bad = failed(pick(ready, "folded-fail"), { countsAsRetry: true });
    if (ok.outcome.case !== "completed" || bad.outcome.case !== "failed") throw new Error("unreachable");
    ok.outcome.value.started = start(pick(ready, "folded-ok"), 1_000_000);
    ok.outcome.value.stopTime = timestampFromMs(1_000_250);
    bad.outcome.value.started = start(pick(ready, "folded-fail"), 2_000_000);
    bad.outcome.value.stopTime = timestampFromMs(2_000_100);
    const out = await ledger.reportResults({ results: [ok, bad] });
    expect(out.outcomes.map((o) => o.status)).toEqual([ResultStatus.APPLIED, ResultStatus.APPLIED]);
    const rows = await t.db.selectFrom("tasks").selectAll().where("job_id", "=", jobId).orderBy("position").execute();
    expect(rows.map((r) => [r.display, r.state, r.runner_id, r.start_time?.getTime(), r.compute_ms])).toEqual([
      ["folded-ok", TaskState.COMPUTED, "runner-folded", 1_000_000, 250],
      ["folded-fail", TaskState.FAILED, "runner-folded", 2_000_000, 100],
    ]);
    const job = await jobState(jobId);
    expect(job.first_start_time?.getTime()).toBe(1_000_000);
  });

  it("ignores a folded start when the start was already applied", async () => {
    const { jobId, ready } = await submit([["started-twice"]]);
    const e = pick(ready, "started-twice");
    await ledger.reportResults({ results: [started(e, "first-runner")] });
    const end = completed(e);
    if (end.outcome.case !== "completed") throw new Error("unreachable");
    end.outcome.value.started = create(TaskStartedSchema, { runnerId: "other" });
    expect((await ledger.reportResults({ results: [end] })).outcomes[0]!.status).toBe(ResultStatus.APPLIED);
    const row = await t.db.selectFrom("tasks").selectAll().where("job_id", "=", jobId).executeTakeFirstOrThrow();
    expect([row.state, row.runner_id]).toEqual([TaskState.COMPUTED, "first-runner"]);
  });

  it("runs a diamond: the join waits for both branches", async () => {
    const { jobId, ready } = await submit([["A"], ["B", { dependsOn: [0] }], ["C", { dependsOn: [0] }], ["D", { dependsOn: [1, 2] }]]);
    expect(names(ready)).toEqual(["A"]);
    const afterA = await run(pick(ready, "A"));
    expect(afterA.outcomes.map((o) => o.status)).toEqual([ResultStatus.APPLIED, ResultStatus.APPLIED]);
    expect(names(afterA.ready)).toEqual(["B", "C"]);
    expect((await jobState(jobId)).state).toBe(JobState.STARTED);
    const afterB = await run(pick(afterA.ready, "B"));
    expect(afterB.ready).toEqual([]);
    const afterC = await run(pick(afterA.ready, "C"));
    expect(names(afterC.ready)).toEqual(["D"]);
    await ledger.reportResults({ results: [started(pick(afterC.ready, "D"))] });
    expect((await jobState(jobId)).state).toBe(JobState.RUNNING);
    await ledger.reportResults({ results: [completed(pick(afterC.ready, "D"))] });
    const job = await jobState(jobId);
    expect(job.state).toBe(JobState.COMPLETED);
    expect(job.computed).toBe(4);
    expect(job.end_time).not.toBeNull();
  });

  it("queues subtasks once the parent is computed and holds a dependant until the whole subtree is done", async () => {
    const { jobId, ready } = await submit([["P"], ["Q", { dependsOn: [0] }]]);
    const p = await run(pick(ready, "P"), { subtasks: [task("s1"), task("s2")] });
    expect(names(p.ready)).toEqual(["s1", "s2"]);
    const s1 = await run(pick(p.ready, "s1"), { subtasks: [task("s1a")] });
    expect(names(s1.ready)).toEqual(["s1a"]);
    // A three-level chain below s1a.
    const s1a = await run(pick(s1.ready, "s1a"), { subtasks: [task("s1aa")] });
    const s1aa = pick(s1a.ready, "s1aa");
    expect((await run(pick(p.ready, "s2"))).ready).toEqual([]);
    await ledger.reportResults({ results: [started(s1aa)] });
    expect((await states(jobId)).Q).toBe(TaskState.QUEUED);
    expect((await jobState(jobId)).state).toBe(JobState.RUNNING);
    const last = await ledger.reportResults({ results: [completed(s1aa)] });
    expect(names(last.ready)).toEqual(["Q"]);
    expect((await run(pick(last.ready, "Q"))).ready).toEqual([]);
    expect((await jobState(jobId)).state).toBe(JobState.COMPLETED);
  });

  it("resolves a deep tree level by level", async () => {
    const { jobId, ready } = await submit([["L0"], ["after", { dependsOn: [0] }]]);
    let current = pick(ready, "L0");
    for (let depth = 1; depth <= 25; depth++) {
      const out = await run(current, { subtasks: [task(`L${depth}`), task(`leaf${depth}`)] });
      await run(pick(out.ready, `leaf${depth}`));
      current = pick(out.ready, `L${depth}`);
    }
    const out = await run(current);
    expect(names(out.ready)).toEqual(["after"]);
    await run(pick(out.ready, "after"));
    const job = await jobState(jobId);
    expect(job.state).toBe(JobState.COMPLETED);
    expect(job.total).toBe(2 + 25 * 2);
  });

  it("routes tasks and subtasks to their clusters, with dependencies across clusters", async () => {
    const { jobId, ready } = await submit([["A", { clusterSlug: "gpu" }], ["B", { dependsOn: [0] }]]);
    const a = pick(ready, "A");
    expect(a.clusterId).toBe(`${team}-gpu-id`);
    const out = await run(a, { subtasks: [task("x", { clusterSlug: "cpu" }), task("y", { dependsOn: [0] })] });
    const x = pick(out.ready, "x");
    expect(x.clusterId).toBe(`${team}-cpu-id`);
    const afterX = await run(x);
    const y = pick(afterX.ready, "y");
    // Subtasks inherit the parent's cluster.
    expect(y.clusterId).toBe(`${team}-gpu-id`);
    const afterY = await run(y);
    const b = pick(afterY.ready, "B");
    expect(b.clusterId).toBe(`${team}-default-id`);
    await run(b);
    expect((await jobState(jobId)).state).toBe(JobState.COMPLETED);
  });

  it("fails the task whose subtasks name an unknown cluster or a forward dependency", async () => {
    const { jobId, ready } = await submit([["A"], ["B"]]);
    const out = await ledger.reportResults({
      results: [
        started(pick(ready, "A")),
        completed(pick(ready, "A"), { subtasks: [task("x", { clusterSlug: "nowhere" })] }),
        started(pick(ready, "B")),
        completed(pick(ready, "B"), { subtasks: [task("y", { dependsOn: [0] })] }),
      ],
    });
    expect(out.outcomes.map((o) => o.status)).toEqual([
      ResultStatus.APPLIED,
      ResultStatus.INVALID,
      ResultStatus.APPLIED,
      ResultStatus.INVALID,
    ]);
    expect(out.outcomes[1]!.reason).toContain("cluster_slug");
    expect(out.outcomes[3]!.reason).toContain("depends_on");
    expect(await states(jobId)).toEqual({ A: TaskState.FAILED, B: TaskState.FAILED });
    expect((await jobState(jobId)).state).toBe(JobState.FAILED);
  });

  it("fails only the task whose result holds text Postgres cannot store (a NUL) and applies the rest of the batch", async () => {
    const { jobId, ready } = await submit([["ok-1"], ["nul-display"], ["nul-label"], ["nul-error", { maxRetries: 3 }], ["nul-sub"], ["ok-2"]]);
    const [ok1, display, label, error, sub, ok2] = ["ok-1", "nul-display", "nul-label", "nul-error", "nul-sub", "ok-2"].map((d) => pick(ready, d));
    const out = await ledger.reportResults({
      results: [
        completed(ok1!),
        completed(display!, { display: "bad\0display" }),
        completed(label!, { progress: [{ label: "rows\0", total: 2, done: 1 }] }),
        failed(error!, { error: "boom\0" }),
        completed(sub!, { subtasks: [task("child\0")] }),
        completed(ok2!),
      ],
    });
    expect(out.outcomes.map((o) => ResultStatus[o.status])).toEqual(["APPLIED", "INVALID", "INVALID", "INVALID", "INVALID", "APPLIED"]);
    expect(out.outcomes.map((o) => o.reason)).toEqual([
      "",
      "the task's result could not be stored: completed.display contains a NUL character (0x00), which cannot be stored",
      "the task's result could not be stored: completed.progress[0].label contains a NUL character (0x00), which cannot be stored",
      "the task's result could not be stored: failed.error contains a NUL character (0x00), which cannot be stored",
      "the task's result could not be stored: completed.subtasks[0].identifier.name contains a NUL character (0x00), which cannot be stored",
      "",
    ]);
    // A retryable task is not retried: the same code would report the same result again.
    expect(await states(jobId)).toEqual({
      "ok-1": TaskState.COMPUTED,
      "nul-display": TaskState.FAILED,
      "nul-label": TaskState.FAILED,
      "nul-error": TaskState.FAILED,
      "nul-sub": TaskState.FAILED,
      "ok-2": TaskState.COMPUTED,
    });
    const rows = await t.db.selectFrom("tasks").select(["display", "error", "subtask_count"]).where("job_id", "=", jobId).execute();
    const byName = Object.fromEntries(rows.map((r) => [r.display, r]));
    expect(byName["nul-display"]!.error).toMatch(/^the task's result could not be stored: completed\.display contains a NUL/);
    expect(byName["nul-sub"]!.subtask_count).toBe(0);
    expect((await jobState(jobId)).state).toBe(JobState.FAILED);
  });

  it("answers a result whose task id holds a NUL as not found, without failing the batch", async () => {
    const { ready } = await submit([["nul-id-ok"]]);
    const e = pick(ready, "nul-id-ok");
    const out = await ledger.reportResults({
      results: [completed({ taskId: "no\0such", attempt: 1 }), completed(e)],
      dispatched: [create(DispatchAckSchema, { taskId: "no\0such", attempt: 1 })],
    });
    expect(out.outcomes.map((o) => ResultStatus[o.status])).toEqual(["NOT_FOUND", "APPLIED"]);
  });

  it("lets dependants of a failed optional task run", async () => {
    const { jobId, ready } = await submit([["A", { optional: true }], ["B", { dependsOn: [0] }]]);
    const out = await ledger.reportResults({ results: [started(pick(ready, "A")), failed(pick(ready, "A"))] });
    expect(names(out.ready)).toEqual(["B"]);
    expect((await states(jobId)).A).toBe(TaskState.FAILED_OPTIONAL);
    await run(pick(out.ready, "B"));
    const job = await jobState(jobId);
    expect(job.state).toBe(JobState.COMPLETED);
    expect(job.failed_optional).toBe(1);
  });

  it("skips the rest of an optional branch when a task inside it fails", async () => {
    const { jobId, ready } = await submit([["O", { optional: true }], ["R", { dependsOn: [0] }], ["other"]]);
    const o = await run(pick(ready, "O"), {
      subtasks: [task("x"), task("y", { dependsOn: [0] }), task("z"), task("w")],
    });
    const z = pick(o.ready, "z");
    const w = pick(o.ready, "w");
    const x = pick(o.ready, "x");
    await run(w, { subtasks: [task("w1")] });
    await ledger.reportResults({ results: [started(z), started(x)] });
    const out = await ledger.reportResults({ results: [failed(x)] });
    expect(names(out.ready)).toEqual(["R"]);
    expect(await states(jobId)).toMatchObject({
      O: TaskState.FAILED_OPTIONAL,
      x: TaskState.FAILED_OPTIONAL,
      y: TaskState.SKIPPED,
      z: TaskState.SKIPPED,
      w: TaskState.COMPUTED,
      w1: TaskState.SKIPPED,
      R: TaskState.QUEUED,
      other: TaskState.QUEUED,
    });
    // The running task of the branch is told to stop, and its result no longer applies.
    expect(dispatcher.revoked.some((r) => r.jobId === jobId && r.taskIds.includes(z.taskId))).toBe(true);
    const late = await ledger.reportResults({ results: [completed(z)] });
    expect(late.outcomes[0]!.status).toBe(ResultStatus.STALE);
    expect(late.outcomes[0]!.canceled).toBe(true);
    await run(pick(out.ready, "R"));
    await run(pick(ready, "other"));
    const job = await jobState(jobId);
    expect(job.state).toBe(JobState.COMPLETED);
    expect(job.skipped).toBe(3);
    expect(job.queued + job.running).toBe(0);
  });

  it("retries a failing task until its retries run out, then fails the job and cancels its queued tasks", async () => {
    const { jobId, ready } = await submit([["A", { maxRetries: 1 }], ["B"], ["C", { dependsOn: [0] }]]);
    const a1 = pick(ready, "A");
    const first = await ledger.reportResults({ results: [started(a1), failed(a1)] });
    const a2 = pick(first.ready, "A");
    expect(a2.attempt).toBe(2);
    expect(a2.retryCount).toBe(1);
    expect((await jobState(jobId)).state).toBe(JobState.STARTED);
    const second = await ledger.reportResults({ results: [started(a2), failed(a2, { error: "still broken" })] });
    expect(second.ready).toEqual([]);
    expect(await states(jobId)).toEqual({ A: TaskState.FAILED, B: TaskState.CANCELED, C: TaskState.CANCELED });
    const job = await jobState(jobId);
    expect(job.state).toBe(JobState.FAILED);
    expect(job.end_time).not.toBeNull();
    // B was already handed to the broker: its start is refused.
    const late = await ledger.reportResults({ results: [started(pick(ready, "B"))] });
    expect(late.outcomes[0]!.status).toBe(ResultStatus.STALE);
  });

  it("hands out a batch's new subtasks as ready with their outbox rows, unless the same batch fails their job", async () => {
    const outbox = async (ids: string[]) =>
      (await t.db.selectFrom("outbox").select(["task_id", "attempt"]).where("task_id", "in", ids).execute()).length;
    // Subtasks that can start: ready, each with an outbox row, from the plan (no read-back).
    const ok = await submit([["S"]]);
    const s = pick(ok.ready, "S");
    const out = await run(s, { subtasks: [task("s1"), task("s2"), task("s3", { dependsOn: [0] })] });
    expect(names(out.ready)).toEqual(["s1", "s2"]);
    const s1 = pick(out.ready, "s1");
    expect(s1).toMatchObject({ jobId: ok.jobId, attempt: 1, parentId: s.taskId, teamId: team, jobName: "job", clusterSlug: s.clusterSlug });
    expect(await outbox(out.ready.map((r) => r.taskId))).toBe(2);
    // In one batch, F fails the job (no retries) and G completes with subtasks: they are canceled,
    // not handed out, and have no outbox rows.
    const bad = await submit([["F", { maxRetries: 0 }], ["G"]]);
    const [f, g] = [pick(bad.ready, "F"), pick(bad.ready, "G")];
    const mixed = await ledger.reportResults({
      results: [started(f), failed(f, { unrecoverable: true }), started(g), completed(g, { subtasks: [task("g1"), task("g2")] })],
    });
    expect(mixed.ready).toEqual([]);
    expect(await states(bad.jobId)).toMatchObject({ F: TaskState.FAILED, G: TaskState.COMPUTED, g1: TaskState.CANCELED, g2: TaskState.CANCELED });
    const subIds = (await t.db.selectFrom("tasks").select("id").where("parent_id", "=", g.taskId).execute()).map((r) => r.id);
    expect(subIds).toHaveLength(2);
    expect(await outbox(subIds)).toBe(0);
  });

  it("re-queues runner-caused failures without counting, and fails unrecoverable ones at once", async () => {
    const first = await submit([["A", { maxRetries: 3 }]]);
    const a = pick(first.ready, "A");
    const out = await ledger.reportResults({ results: [started(a), failed(a, { countsAsRetry: false })] });
    const a2 = pick(out.ready, "A");
    expect(a2.attempt).toBe(2);
    expect(a2.retryCount).toBe(0);
    expect(await states(first.jobId)).toEqual({ A: TaskState.QUEUED });
    const second = await submit([["B", { maxRetries: 3 }], ["C"]]);
    const b = pick(second.ready, "B");
    const failedB = await ledger.reportResults({ results: [started(b), failed(b, { unrecoverable: true })] });
    expect(failedB.ready).toEqual([]);
    expect(await states(second.jobId)).toEqual({ B: TaskState.FAILED, C: TaskState.CANCELED });
    // A retry queued in the same batch as the job's failure is canceled with the rest.
    const third = await submit([["D", { maxRetries: 3 }], ["E"]]);
    const d = pick(third.ready, "D");
    const e = pick(third.ready, "E");
    const mixed = await ledger.reportResults({ results: [started(d), started(e), failed(d), failed(e)] });
    expect(mixed.ready).toEqual([]);
    expect(mixed.outcomes[2]!.canceled).toBe(true);
    expect(await states(third.jobId)).toEqual({ D: TaskState.CANCELED, E: TaskState.FAILED });
  });

  it("rejects a stale result after a lease expiry and applies the rest of the batch", async () => {
    const { jobId, ready } = await submit([["A"], ["B"]]);
    const a1 = pick(ready, "A");
    const b1 = pick(ready, "B");
    await ledger.reportResults({ results: [started(a1), started(b1)] });
    const exp = await ledger.reportResults({ results: [expired(a1)] });
    const a2 = pick(exp.ready, "A");
    expect(a2.attempt).toBe(2);
    const out = await ledger.reportResults({ results: [completed(a1), completed(b1), started(a2)] });
    expect(out.outcomes.map((o) => o.status)).toEqual([ResultStatus.STALE, ResultStatus.APPLIED, ResultStatus.APPLIED]);
    expect(await states(jobId)).toEqual({ A: TaskState.RUNNING, B: TaskState.COMPUTED });
    await ledger.reportResults({ results: [completed(a2)] });
    const rows = await ledger.listTasks(team, { jobId, parentId: "", pageSize: 0, pageToken: "", includeInput: false });
    expect(rows.tasks[0]!.lease_expiry_count).toBe(1);
    expect(rows.tasks[0]!.retry_count).toBe(0);
    expect((await jobState(jobId)).state).toBe(JobState.COMPLETED);
    const unknown = await ledger.reportResults({ results: [completed({ taskId: "nope", attempt: 1 })] });
    expect(unknown.outcomes[0]!.status).toBe(ResultStatus.NOT_FOUND);
  });

  it("fails a task whose lease expired more often than the cap, whatever max_retries says", async () => {
    const { jobId, ready } = await submit([["A", { maxRetries: 50 }]]);
    let a = pick(ready, "A");
    for (let i = 0; i < MAX_LEASE_EXPIRIES; i++) {
      const out = await ledger.reportResults({ results: [started(a), expired(a)] });
      a = pick(out.ready, "A");
    }
    const last = await ledger.reportResults({ results: [started(a), expired(a)] });
    expect(last.ready).toEqual([]);
    expect(await states(jobId)).toEqual({ A: TaskState.FAILED });
    expect((await jobState(jobId)).state).toBe(JobState.FAILED);
  });

  it("applies two concurrent appliers' batches on the same job without losing an update", async () => {
    const n = 400;
    const subs = [...Array.from({ length: n }, (_, i) => task(`t${i}`)), task("join", { dependsOn: Array.from({ length: n }, (_, i) => i) })];
    const { jobId, ready } = await submit(subs);
    expect(ready).toHaveLength(n);
    const batches: ReturnType<typeof started>[][] = [];
    for (let i = 0; i < n; i += 20) batches.push(ready.slice(i, i + 20).flatMap((e) => [started(e), completed(e, { progress: [{ label: "p", total: 1, done: 1 }] })]));
    const applier = async (mine: typeof batches) => {
      const got: TaskEnvelope[] = [];
      for (const b of mine) got.push(...(await ledger.reportResults({ results: b })).ready);
      return got;
    };
    const [x, y] = await Promise.all([applier(batches.filter((_, i) => i % 2 === 0)), applier(batches.filter((_, i) => i % 2 === 1))]);
    // The join became ready exactly once.
    expect(names([...x, ...y])).toEqual(["join"]);
    const job = await jobState(jobId);
    expect(job.computed).toBe(n);
    expect(job.queued).toBe(1);
    expect(job.running).toBe(0);
    const { progress } = await ledger.getJob(team, jobId);
    expect(progress).toEqual([{ label: "p", total: n, done: n }]);
    // The same batch delivered twice at once applies once.
    const join = pick([...x, ...y], "join");
    const dup = [started(join), completed(join)];
    const [d1, d2] = await Promise.all([ledger.reportResults({ results: dup }), ledger.reportResults({ results: dup })]);
    // The second delivery is recognised as a duplicate (durable, so the runner gets its ack).
    expect([...d1.outcomes, ...d2.outcomes].every((o) => o.status === ResultStatus.APPLIED)).toBe(true);
    expect([...d1.outcomes, ...d2.outcomes].filter((o) => o.reason === "already applied")).toHaveLength(2);
    expect([...d1.ready, ...d2.ready]).toEqual([]);
    const done = await jobState(jobId);
    expect(done.state).toBe(JobState.COMPLETED);
    expect(done.computed).toBe(n + 1);
  });
});

describe("applyResults with nested optional branches", () => {
  it("fails only the nearest optional branch and keeps the outer one running", async () => {
    const { jobId, ready } = await submit([["outer", { optional: true }], ["after", { dependsOn: [0] }]]);
    const outer = await run(pick(ready, "outer"), { subtasks: [task("inner", { optional: true }), task("sibling")] });
    const inner = await run(pick(outer.ready, "inner"), { subtasks: [task("leaf"), task("leaf2", { dependsOn: [0] })] });
    const leaf = pick(inner.ready, "leaf");
    const out = await ledger.reportResults({ results: [started(leaf), failed(leaf)] });
    expect(out.ready).toEqual([]);
    expect(await states(jobId)).toMatchObject({
      outer: TaskState.COMPUTED,
      inner: TaskState.FAILED_OPTIONAL,
      leaf: TaskState.FAILED_OPTIONAL,
      leaf2: TaskState.SKIPPED,
      sibling: TaskState.QUEUED,
      after: TaskState.QUEUED,
    });
    const s = await run(pick(outer.ready, "sibling"));
    expect(names(s.ready)).toEqual(["after"]);
    const started1 = await ledger.reportResults({ results: [started(pick(s.ready, "after"))] });
    expect(started1.outcomes[0]!.status).toBe(ResultStatus.APPLIED);
    const job = await jobState(jobId);
    expect(job.state).toBe(JobState.RUNNING);
    expect(job.first_start_time).not.toBeNull();
    await ledger.reportResults({ results: [completed(pick(s.ready, "after"))] });
    expect((await jobState(jobId)).state).toBe(JobState.COMPLETED);
  });
});

describe("applyResults under concurrency", () => {
  it("completes a parent's subtree exactly once when siblings finish in concurrent batches", async () => {
    const { jobId, ready } = await submit([["P"], ["Q", { dependsOn: [0] }]]);
    const p = await run(pick(ready, "P"), { subtasks: Array.from({ length: 120 }, (_, i) => task(`s${i}`)) });
    expect(p.ready).toHaveLength(120);
    await ledger.reportResults({ results: p.ready.map((e) => started(e)) });
    const batches: TaskEnvelope[][] = [];
    for (let i = 0; i < p.ready.length; i += 5) batches.push(p.ready.slice(i, i + 5));
    const applier = async (mine: TaskEnvelope[][]) => {
      const got: TaskEnvelope[] = [];
      for (const b of mine) got.push(...(await ledger.reportResults({ results: b.map((e) => completed(e)) })).ready);
      return got;
    };
    const results = await Promise.all([0, 1, 2].map((k) => applier(batches.filter((_, i) => i % 3 === k))));
    expect(names(results.flat())).toEqual(["Q"]);
    const job = await jobState(jobId);
    expect(job.computed).toBe(121);
    expect(job.running).toBe(0);
    expect(job.queued).toBe(1);
  });
});

describe("applyResults with a re-sent batch", () => {
  it("answers a batch applied before as applied again, without applying it twice", async () => {
    const { jobId, ready } = await submit([["A"], ["B", { dependsOn: [0] }]]);
    const a = pick(ready, "A");
    const batch = [started(a), completed(a, { progress: [{ label: "p", total: 1, done: 1 }] })];
    const first = await ledger.reportResults({ results: batch });
    expect(names(first.ready)).toEqual(["B"]);
    const again = await ledger.reportResults({ results: batch });
    expect(again.outcomes.map((o) => [o.status, o.reason])).toEqual([
      [ResultStatus.APPLIED, "already applied"],
      [ResultStatus.APPLIED, "already applied"],
    ]);
    // B's outbox row is still there until the broker acknowledges it, so it is not lost.
    expect(again.ready).toEqual([]);
    const job = await jobState(jobId);
    expect(job.computed).toBe(1);
    expect((await ledger.getJob(team, jobId)).progress).toEqual([{ label: "p", total: 1, done: 1 }]);
  });
});
