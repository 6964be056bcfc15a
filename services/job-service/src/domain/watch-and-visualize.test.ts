import { JobState, TaskState, type TaskEnvelope } from "@corral/proto";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobLedger, type JobLedger } from "../job-ledger.js";
import { createJobNotifier, type JobNotifier } from "../job-notifier.js";
import { findTasks } from "../store/task-query-repository.js";
import type { JobChange } from "./watch-job.js";
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
let notifier: JobNotifier;
let ledger: JobLedger;
const team = "team-w";

beforeAll(async () => {
  t = await createJobsTestDb("jobs_watch");
  dispatcher = createRecordingDispatcher();
  notifier = createJobNotifier({ url: t.url });
  ledger = createJobLedger({ db: t.db, clusters: createTestClusters(), dispatcher, notifier });
});
afterAll(async () => {
  await notifier?.close();
  await t?.close();
});

async function submit(subs: ReturnType<typeof task>[]) {
  dispatcher.enqueued.length = 0;
  const { job } = await ledger.submitJob({ teamId: team, name: "watched", clusterSlug: "", tasks: subs });
  return { jobId: job.id, ready: [...dispatcher.enqueued] };
}

const value = (r: IteratorResult<JobChange, void>): JobChange => {
  if (r.done) throw new Error("the stream ended");
  return r.value;
};

const pick = (ready: TaskEnvelope[], display: string) => ready.find((r) => r.display === display)!;

describe("watchJob", () => {
  it("sends the current state, then each change with the changed tasks, and ends with the job", async () => {
    const { jobId, ready } = await submit([task("a"), task("b")]);
    const abort = new AbortController();
    const stream = ledger.watchJob(team, jobId, abort.signal)[Symbol.asyncIterator]();
    const first = await stream.next();
    expect(first.done).toBe(false);
    expect(value(first).job.state).toBe(JobState.SUBMITTED);
    expect(value(first).changedTasks).toEqual([]);

    const a = pick(ready, "a");
    const nextChange = stream.next();
    await ledger.reportResults({ results: [started(a)] });
    const second = await nextChange;
    expect(value(second).job.state).toBe(JobState.RUNNING);
    expect(value(second).changedTasks.map((x) => [x.display, x.state])).toEqual([["a", TaskState.RUNNING]]);

    await ledger.reportResults({ results: [completed(a, { progress: [{ label: "l", total: 2, done: 1 }] })] });
    const third = await stream.next();
    expect(value(third).changedTasks.map((x) => [x.display, x.state])).toContainEqual(["a", TaskState.COMPUTED]);
    expect(value(third).progress).toEqual([{ label: "l", total: 2, done: 1 }]);
    // A changed task reads as the task listing reads it: every column, timestamps as Dates.
    const listed = await findTasks(t.db, jobId, [a.taskId]);
    const watched = value(third).changedTasks.find((x) => x.id === a.taskId);
    expect(watched).toEqual(listed[0]);
    expect(watched?.start_time).toBeInstanceOf(Date);
    expect(watched?.stop_time).toBeInstanceOf(Date);
    expect(watched?.progress).toEqual([{ label: "l", total: 2, done: 1 }]);

    const b = pick(ready, "b");
    await ledger.reportResults({ results: [started(b), failed(b)] });
    let last = await stream.next();
    while (!last.done && value(last).job.state !== JobState.FAILED) last = await stream.next();
    expect(value(last).job.state).toBe(JobState.FAILED);
    expect((await stream.next()).done).toBe(true);
  });

  it("keeps delivering after the LISTEN connection was cut", async () => {
    const { jobId, ready } = await submit([task("a")]);
    const stream = ledger.watchJob(team, jobId, new AbortController().signal)[Symbol.asyncIterator]();
    await stream.next();
    await sql`select pg_terminate_backend(pid) from pg_stat_activity
      where datname = current_database() and application_name = 'job-service-listen'`.execute(t.db);
    const a = pick(ready, "a");
    const pending = stream.next();
    await ledger.reportResults({ results: [started(a), completed(a)] });
    let change = value(await pending);
    while (change.job.state !== JobState.COMPLETED) change = value(await stream.next());
    expect((await stream.next()).done).toBe(true);
  });

  it("ends when the caller aborts", async () => {
    const { jobId } = await submit([task("a")]);
    const abort = new AbortController();
    const stream = ledger.watchJob(team, jobId, abort.signal)[Symbol.asyncIterator]();
    await stream.next();
    const pending = stream.next();
    abort.abort();
    expect((await pending).done).toBe(true);
  });

  it("answers NOT_FOUND for another team's job", async () => {
    const { jobId } = await submit([task("a")]);
    const stream = ledger.watchJob("other-team", jobId, new AbortController().signal)[Symbol.asyncIterator]();
    await expect(stream.next()).rejects.toMatchObject({ code: 5 });
  });
});

describe("visualizeJob", () => {
  it("draws tasks coloured by state with parent and dependency edges", async () => {
    const { jobId, ready } = await submit([task("root"), task("after", { dependsOn: [0] })]);
    const root = pick(ready, "root");
    await ledger.reportResults({ results: [started(root), completed(root, { subtasks: [task("child", { display: "child <1>" })] })] });
    const g = await ledger.visualizeJob(team, jobId);
    expect(g.summarized).toBe(false);
    expect(g.svg.startsWith("<svg")).toBe(true);
    expect(g.svg.match(/<g class="task /g)).toHaveLength(3);
    expect(g.svg).toContain('class="task computed"');
    expect(g.svg).toContain('class="task queued"');
    expect(g.svg).toContain("child &lt;1&gt;");
    expect(g.svg.match(/class="edge parent"/g)).toHaveLength(1);
    expect(g.svg.match(/class="edge dependency"/g)).toHaveLength(1);
    expect(g.mermaid.split("\n")[0]).toBe("flowchart TD");
    expect(g.mermaid).toContain("n0 --> n2");
    expect(g.mermaid).toContain("n0 -.-> n1");
    expect(g.dot).toContain("digraph job {");
    expect(g.dot).toContain("n0 -> n1 [style=dashed");
  });

  it("summarises by identifier and state above max_tasks", async () => {
    const { jobId, ready } = await submit([task("root")]);
    const root = pick(ready, "root");
    const out = await ledger.reportResults({
      results: [started(root), completed(root, { subtasks: Array.from({ length: 30 }, (_, i) => task(i % 2 ? "odd" : "even")) })],
    });
    await ledger.reportResults({ results: out.ready.slice(0, 4).flatMap((e) => [started(e), completed(e)]) });
    const g = await ledger.visualizeJob(team, jobId, 10);
    expect(g.summarized).toBe(true);
    // root (computed), even/odd computed, even/odd queued.
    expect(g.svg.match(/<g class="task /g)).toHaveLength(5);
    expect(g.mermaid).toContain("QUEUED × 13");
    expect(g.mermaid).toMatch(/-->\|×13\|/);
  });
});
