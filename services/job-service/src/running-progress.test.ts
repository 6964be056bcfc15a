// TaskLedgerService.ReportProgress through the ledger, against Postgres: live progress of running
// tasks is written for their current attempt only, shows in GetJob before the task ends, and never
// outlives the result.
import { create } from "@bufbuild/protobuf";
import { ProgressIndicatorSchema, RunningProgressSchema, type TaskEnvelope } from "@corral/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobLedger, type JobLedger } from "./job-ledger.js";
import { sql } from "kysely";
import { loadTasks, updateTasks } from "./store/task-repository.js";
import { completed, createJobsTestDb, createRecordingDispatcher, createTestClusters, expired, failed, started, task, type JobsTestDb, type RecordingDispatcher } from "./testing/job-test-kit.js";

let t: JobsTestDb;
let dispatcher: RecordingDispatcher;
let ledger: JobLedger;
const team = "team-a";

beforeAll(async () => {
  t = await createJobsTestDb("jobs_running_progress");
  dispatcher = createRecordingDispatcher();
  ledger = createJobLedger({ db: t.db, clusters: createTestClusters(), dispatcher });
});
afterAll(async () => {
  await t?.close();
});

async function submitOne(display: string, maxRetries = 0): Promise<{ jobId: string; envelope: TaskEnvelope }> {
  dispatcher.enqueued.length = 0;
  const { job } = await ledger.submitJob({ teamId: team, name: display, clusterSlug: "", tasks: [task(display, { maxRetries })] });
  return { jobId: job.id, envelope: dispatcher.enqueued[0]! };
}

const progress = (taskId: string, attempt: number, done: number, display = "") =>
  create(RunningProgressSchema, {
    taskId,
    attempt,
    display,
    progress: [create(ProgressIndicatorSchema, { label: "tiles", total: 10n, done: BigInt(done) })],
  });

const shown = async (jobId: string) => (await ledger.getJob(team, jobId)).progress;

describe("ReportProgress", () => {
  it("shows a running task's progress and display in GetJob before the task ends", async () => {
    const { jobId, envelope } = await submitOne("running");
    await ledger.reportResults({ results: [started(envelope)] });
    expect(await ledger.reportProgress([progress(envelope.taskId, envelope.attempt, 3, "3 of 10")])).toBe(1);
    expect(await shown(jobId)).toEqual([{ label: "tiles", total: 10, done: 3 }]);
    expect((await ledger.getTask(team, jobId, envelope.taskId)).display).toBe("3 of 10");
    // Latest wins, and an empty display keeps the one the task set.
    expect(await ledger.reportProgress([progress(envelope.taskId, envelope.attempt, 5), progress(envelope.taskId, envelope.attempt, 7)])).toBe(1);
    expect(await shown(jobId)).toEqual([{ label: "tiles", total: 10, done: 7 }]);
    expect((await ledger.getTask(team, jobId, envelope.taskId)).display).toBe("3 of 10");
  });

  it("skips an attempt that is not the task's current one", async () => {
    const { jobId, envelope } = await submitOne("stale");
    await ledger.reportResults({ results: [started(envelope)] });
    await ledger.reportResults({ results: [expired(envelope)] });
    expect(await ledger.reportProgress([progress(envelope.taskId, envelope.attempt, 4)])).toBe(0);
    expect(await shown(jobId)).toEqual([]);
  });

  it("never overwrites the progress a task ended with", async () => {
    const { jobId, envelope } = await submitOne("ended");
    await ledger.reportResults({ results: [started(envelope), completed(envelope)] });
    expect(await ledger.reportProgress([progress(envelope.taskId, envelope.attempt, 9)])).toBe(0);
    expect(await shown(jobId)).toEqual([]);
  });

  it("keeps live progress a result batch did not set, when the batch read the row before it was written", async () => {
    const { jobId, envelope } = await submitOne("interleaved");
    // A batch applying the start read the row (no progress yet) ...
    const [before] = await loadTasks(t.db, [envelope.taskId]);
    // ... live progress is written meanwhile ...
    expect(await ledger.reportProgress([progress(envelope.taskId, envelope.attempt, 3, "3 of 10")])).toBe(1);
    // ... and the batch writes its start: the progress and display it did not change stay.
    await updateTasks(t.db, [{ ...before!, start_time: new Date() }], [false]);
    expect(await shown(jobId)).toEqual([{ label: "tiles", total: 10, done: 3 }]);
    expect((await ledger.getTask(team, jobId, envelope.taskId)).display).toBe("3 of 10");
  });

  it("stores no indicators as none, so tasks without progress stay out of the job's progress index", async () => {
    const storedProgress = async (taskId: string) =>
      (await sql<{ progress: unknown }>`select progress from tasks where id = ${taskId}`.execute(t.db)).rows[0]!.progress;
    const { jobId, envelope } = await submitOne("plain");
    await ledger.reportResults({ results: [started(envelope), completed(envelope)] });
    expect(await storedProgress(envelope.taskId)).toBeNull();

    // An attempt that reports none clears what the attempt before it reported.
    const retried = await submitOne("retried", 1);
    await ledger.reportResults({ results: [started(retried.envelope)] });
    expect(await ledger.reportProgress([progress(retried.envelope.taskId, retried.envelope.attempt, 4)])).toBe(1);
    await ledger.reportResults({ results: [failed(retried.envelope)] });
    const second = { taskId: retried.envelope.taskId, attempt: retried.envelope.attempt + 1 };
    await ledger.reportResults({ results: [started(second)] });
    expect(await ledger.reportProgress([create(RunningProgressSchema, { taskId: second.taskId, attempt: second.attempt, display: "" })])).toBe(1);
    expect(await storedProgress(second.taskId)).toBeNull();
    await ledger.reportResults({ results: [completed(second)] });
    expect(await storedProgress(second.taskId)).toBeNull();
    expect(await shown(retried.jobId)).toEqual([]);

    // Rows written before tasks stored null hold an empty list: they read as none too.
    await sql`update tasks set progress = '[]'::jsonb where id = ${envelope.taskId}`.execute(t.db);
    expect(await shown(jobId)).toEqual([]);
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from tasks
      where job_id = ${jobId} and progress is not null and progress <> '[]'::jsonb`.execute(t.db);
    expect(rows[0]!.n).toBe(0);
  });
});
