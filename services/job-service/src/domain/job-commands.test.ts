import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { JobState, QueryJobsRequestSchema, ResultStatus, TaskState, type TaskEnvelope } from "@corral/proto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobLedger, type JobLedger } from "../job-ledger.js";
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
const team = "team-c";

beforeAll(async () => {
  t = await createJobsTestDb("jobs_commands");
  dispatcher = createRecordingDispatcher();
  ledger = createJobLedger({ db: t.db, clusters: createTestClusters(), dispatcher });
});
afterAll(async () => {
  await t?.close();
});

async function submit(subs: ReturnType<typeof task>[], name = "job", teamId = team) {
  dispatcher.enqueued.length = 0;
  const { job } = await ledger.submitJob({ teamId, name, clusterSlug: "", tasks: subs });
  return { jobId: job.id, ready: [...dispatcher.enqueued] };
}

function pick(ready: TaskEnvelope[], display: string): TaskEnvelope {
  const e = ready.find((r) => r.display === display);
  if (!e) throw new Error(`${display} is not ready (ready: ${ready.map((r) => r.display).join(", ")})`);
  return e;
}

async function states(jobId: string): Promise<Record<string, number>> {
  const rows = await t.db.selectFrom("tasks").select(["display", "state"]).where("job_id", "=", jobId).execute();
  return Object.fromEntries(rows.map((r) => [r.display, r.state]));
}

describe("cancelJob and retryJob", () => {
  it("cancels queued tasks, revokes running ones, cancels later subtasks, and resumes on retry", async () => {
    const { jobId, ready } = await submit([task("A"), task("B"), task("C", { dependsOn: [0] })]);
    const a = pick(ready, "A");
    await ledger.reportResults({ results: [started(a)] });
    dispatcher.revoked.length = 0;
    const job = await ledger.cancelJob(team, jobId);
    expect(job.state).toBe(JobState.CANCELED);
    expect(job.canceled).toBe(true);
    // Canceled is final even while A still runs: the end time is stamped now.
    expect((await ledger.getJob(team, jobId)).job.end_time).not.toBeNull();
    expect(dispatcher.revoked).toEqual([{ teamId: team, jobId, taskIds: [], reason: "job canceled" }]);
    expect(await states(jobId)).toEqual({ A: TaskState.RUNNING, B: TaskState.CANCELED, C: TaskState.CANCELED });
    // B was handed to the broker before the cancel: it never starts.
    const lateStart = await ledger.reportResults({ results: [started(pick(ready, "B"))] });
    expect(lateStart.outcomes[0]!.status).toBe(ResultStatus.STALE);
    expect(lateStart.outcomes[0]!.canceled).toBe(true);
    // The running task may still finish; what it submits does not run.
    const done = await ledger.reportResults({ results: [completed(a, { subtasks: [task("a1"), task("a2")] })] });
    expect(done.outcomes[0]!.status).toBe(ResultStatus.APPLIED);
    expect(done.outcomes[0]!.canceled).toBe(true);
    expect(done.ready).toEqual([]);
    expect(await states(jobId)).toMatchObject({ A: TaskState.COMPUTED, a1: TaskState.CANCELED, a2: TaskState.CANCELED });
    expect((await ledger.cancelJob(team, jobId)).state).toBe(JobState.CANCELED);

    dispatcher.enqueued.length = 0;
    const retried = await ledger.retryJob(team, jobId);
    expect(retried.rescheduled).toBe(4);
    expect(retried.job.canceled).toBe(false);
    expect(retried.job.state).toBe(JobState.STARTED);
    expect(dispatcher.enqueued.map((e) => e.display).sort()).toEqual(["B", "a1", "a2"]);
    const readyLater: TaskEnvelope[] = [];
    for (const e of [...dispatcher.enqueued]) {
      expect(e.attempt).toBe(2);
      readyLater.push(...(await ledger.reportResults({ results: [started(e), completed(e)] })).ready);
    }
    // C waited for A's subtree.
    const c = pick(readyLater, "C");
    await ledger.reportResults({ results: [started(c), completed(c)] });
    const end = (await ledger.getJob(team, jobId)).job;
    expect(end.state).toBe(JobState.COMPLETED);
    expect(end.end_time).not.toBeNull();
  });

  it("skips canceled tasks of an optional branch that failed after the cancel, so a retry leaves them", async () => {
    const { jobId, ready } = await submit([task("O", { optional: true }), task("R", { dependsOn: [0] })]);
    const o = pick(ready, "O");
    const out = await ledger.reportResults({ results: [started(o), completed(o, { subtasks: [task("x"), task("y")] })] });
    const x = pick(out.ready, "x");
    await ledger.reportResults({ results: [started(x)] });
    await ledger.cancelJob(team, jobId);
    expect(await states(jobId)).toMatchObject({ x: TaskState.RUNNING, y: TaskState.CANCELED, R: TaskState.CANCELED });
    await ledger.reportResults({ results: [failed(x)] });
    expect(await states(jobId)).toMatchObject({
      O: TaskState.FAILED_OPTIONAL,
      x: TaskState.FAILED_OPTIONAL,
      y: TaskState.SKIPPED,
      R: TaskState.CANCELED,
    });
    dispatcher.enqueued.length = 0;
    const retried = await ledger.retryJob(team, jobId);
    expect(retried.rescheduled).toBe(1);
    const r = pick(dispatcher.enqueued, "R");
    await ledger.reportResults({ results: [started(r), completed(r)] });
    const job = (await ledger.getJob(team, jobId)).job;
    expect(job.state).toBe(JobState.COMPLETED);
    expect(job.skipped).toBe(1);
  });

  it("retries a failed job from the point of failure", async () => {
    const { jobId, ready } = await submit([task("A"), task("B", { dependsOn: [0] }), task("C")]);
    const c = pick(ready, "C");
    await ledger.reportResults({ results: [started(c), completed(c)] });
    const a = pick(ready, "A");
    await ledger.reportResults({ results: [started(a), failed(a)] });
    const failedJob = (await ledger.getJob(team, jobId)).job;
    expect(failedJob.state).toBe(JobState.FAILED);
    expect(failedJob.end_time).not.toBeNull();
    dispatcher.enqueued.length = 0;
    const retried = await ledger.retryJob(team, jobId);
    expect(retried.rescheduled).toBe(2);
    expect(retried.job.end_time).toBeNull();
    expect(retried.job.state).toBe(JobState.STARTED);
    const a2 = pick(dispatcher.enqueued, "A");
    expect(a2.attempt).toBe(2);
    const out = await ledger.reportResults({ results: [started(a2), completed(a2)] });
    const b = pick(out.ready, "B");
    await ledger.reportResults({ results: [started(b), completed(b)] });
    expect(await states(jobId)).toEqual({ A: TaskState.COMPUTED, B: TaskState.COMPUTED, C: TaskState.COMPUTED });
    expect((await ledger.getJob(team, jobId)).job.state).toBe(JobState.COMPLETED);
    // Nothing left to retry.
    expect((await ledger.retryJob(team, jobId)).rescheduled).toBe(0);
  });

  it("counts only the last attempt's progress of each task", async () => {
    const { jobId, ready } = await submit([task("A", { maxRetries: 2 }), task("B")]);
    const a = pick(ready, "A");
    const r1 = await ledger.reportResults({
      results: [started(a), failed(a, { progress: [{ label: "tiles", total: 10, done: 5 }, { label: "old", total: 1, done: 1 }] })],
    });
    expect((await ledger.getJob(team, jobId)).progress).toEqual([
      { label: "old", total: 1, done: 1 },
      { label: "tiles", total: 10, done: 5 },
    ]);
    const a2 = pick(r1.ready, "A");
    await ledger.reportResults({ results: [started(a2), completed(a2, { progress: [{ label: "tiles", total: 10, done: 10 }] })] });
    const b = pick(ready, "B");
    await ledger.reportResults({ results: [started(b), completed(b, { progress: [{ label: "tiles", total: 4, done: 4 }] })] });
    const { job, progress } = await ledger.getJob(team, jobId);
    expect(progress).toEqual([{ label: "tiles", total: 14, done: 14 }]);
    expect(job.state).toBe(JobState.COMPLETED);
    expect(job.first_start_time).not.toBeNull();
    expect(job.last_stop_time).not.toBeNull();
  });
});

describe("queries", () => {
  it("pages jobs newest first with filters, and task levels in order", async () => {
    const teamQ = "team-query";
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await submit([task("x")], i % 2 === 0 ? `even-${i}` : `odd-${i}`, teamQ)).jobId);
    const q = (init: Parameters<typeof create<typeof QueryJobsRequestSchema>>[1]) => create(QueryJobsRequestSchema, init);
    const p1 = await ledger.queryJobs(teamQ, q({ pageSize: 2 }));
    expect(p1.jobs.map((j) => j.id)).toEqual([ids[4], ids[3]]);
    const p2 = await ledger.queryJobs(teamQ, q({ pageSize: 2, pageToken: p1.nextPageToken }));
    expect(p2.jobs.map((j) => j.id)).toEqual([ids[2], ids[1]]);
    const p3 = await ledger.queryJobs(teamQ, q({ pageSize: 2, pageToken: p2.nextPageToken }));
    expect(p3.jobs.map((j) => j.id)).toEqual([ids[0]]);
    expect(p3.nextPageToken).toBe("");
    expect((await ledger.queryJobs(teamQ, q({ name: "EVEN" }))).jobs).toHaveLength(3);
    expect((await ledger.queryJobs(teamQ, q({ ascending: true, pageSize: 1 }))).jobs[0]!.id).toBe(ids[0]);
    await ledger.cancelJob(teamQ, ids[1]!);
    expect((await ledger.queryJobs(teamQ, q({ states: [JobState.CANCELED] }))).jobs.map((j) => j.id)).toEqual([ids[1]]);
    expect((await ledger.queryJobs(teamQ, q({ taskStates: [TaskState.CANCELED] }))).jobs.map((j) => j.id)).toEqual([ids[1]]);
    expect((await ledger.queryJobs(teamQ, q({ states: [JobState.SUBMITTED] }))).jobs).toHaveLength(4);
    expect((await ledger.queryJobs(teamQ, q({ clusterSlugs: ["default-AbCdEfGhIjKlMn"] }))).jobs).toHaveLength(5);
    expect((await ledger.queryJobs(teamQ, q({ clusterSlugs: ["gpu"] }))).jobs).toHaveLength(0);
    // A slug the team has no cluster for is a typo, not "no jobs".
    await expect(ledger.queryJobs(teamQ, q({ clusterSlugs: ["gpu", "typo"] }))).rejects.toMatchObject({ code: Code.NotFound });
    const future = timestampFromDate(new Date(Date.now() + 60_000));
    expect((await ledger.queryJobs(teamQ, q({ startTime: future }))).jobs).toHaveLength(0);
    expect((await ledger.queryJobs(teamQ, q({ endTime: future }))).jobs).toHaveLength(5);
    expect((await ledger.queryJobs("someone-else", q({}))).jobs).toHaveLength(0);
    await expect(ledger.queryJobs(teamQ, q({ pageToken: "garbage" }))).rejects.toMatchObject({ code: 3 });

    const { jobId, ready } = await submit([task("root")], "tree", teamQ);
    const root = pick(ready, "root");
    await ledger.reportResults({
      results: [started(root), completed(root, { subtasks: Array.from({ length: 7 }, (_, i) => task(`s${i}`, { input: new Uint8Array([i]) })) })],
    });
    const roots = await ledger.listTasks(teamQ, { jobId, parentId: "", pageSize: 10, pageToken: "", includeInput: false });
    expect(roots.tasks.map((x) => x.display)).toEqual(["root"]);
    expect(roots.tasks[0]!.subtask_count).toBe(7);
    const seen: string[] = [];
    let token = "";
    do {
      const page = await ledger.listTasks(teamQ, { jobId, parentId: root.taskId, pageSize: 3, pageToken: token, includeInput: true });
      seen.push(...page.tasks.map((x) => `${x.display}:${x.input?.[0]}`));
      token = page.nextPageToken;
    } while (token !== "");
    expect(seen).toEqual(["s0:0", "s1:1", "s2:2", "s3:3", "s4:4", "s5:5", "s6:6"]);
    await expect(
      ledger.listTasks(teamQ, { jobId, parentId: "missing", pageSize: 3, pageToken: "", includeInput: false }),
    ).rejects.toMatchObject({ code: 5 });
  });
});
