// What a failed attempt leaves to read (corral/RunScript's exit code and tails), through the ledger
// against Postgres: stored with the failed attempt in the result's transaction, shown by GetTask for
// the current attempt, bounded by the inline limit, never delivered to dependants as a result.
import { create } from "@bufbuild/protobuf";
import { OutputEncoding, TaskOutputSchema, type TaskEnvelope } from "@corral/proto";
import { FAILED, QUEUED } from "./domain/states.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobLedger, type JobLedger } from "./job-ledger.js";
import { completed, createJobsTestDb, createRecordingDispatcher, createTestClusters, failed, started, task, type JobsTestDb, type RecordingDispatcher } from "./testing/job-test-kit.js";

let t: JobsTestDb;
let dispatcher: RecordingDispatcher;
let ledger: JobLedger;
const team = "team-a";
const maxOutputBytes = 256;

beforeAll(async () => {
  t = await createJobsTestDb("jobs_failed_outputs");
  dispatcher = createRecordingDispatcher();
  ledger = createJobLedger({ db: t.db, clusters: createTestClusters(), dispatcher, maxOutputBytes });
});
afterAll(async () => {
  await t?.close();
});

const json = (value: unknown) => create(TaskOutputSchema, { encoding: OutputEncoding.JSON, data: new TextEncoder().encode(JSON.stringify(value)) });
const decoded = (row: { output_data?: Buffer | null }) => (row.output_data ? JSON.parse(row.output_data.toString("utf8")) : undefined);
const scriptError = "ScriptFailedError: corral/RunScript: exit code 4: ./deploy.sh\n--- stderr (10 chars) ---\ndisk full\n\n--- stdout (0 chars) ---\n";

async function submit(tasks: ReturnType<typeof task>[]): Promise<{ jobId: string; ready: TaskEnvelope[] }> {
  dispatcher.enqueued.length = 0;
  const { job } = await ledger.submitJob({ teamId: team, name: "failed-outputs", clusterSlug: "", tasks });
  return { jobId: job.id, ready: [...dispatcher.enqueued] };
}

async function storedAttempts(taskId: string): Promise<number[]> {
  const rows = await t.db.selectFrom("task_outputs").select("attempt").where("task_id", "=", taskId).orderBy("attempt").execute();
  return rows.map((r) => r.attempt);
}

describe("a failed attempt's output", () => {
  it("is stored with the failure and shown by GetTask, the error text unchanged", async () => {
    const { jobId, ready } = await submit([task("corral/RunScript")]);
    const env = ready[0]!;
    await ledger.reportResults({ results: [started(env)] });
    const out = { exitCode: 4, stdoutTail: "", stderrTail: "disk full\n" };
    await ledger.reportResults({ results: [failed(env, { unrecoverable: true, error: scriptError, output: json(out) })] });
    const view = await ledger.getTask(team, jobId, env.taskId);
    expect(view.state).toBe(FAILED);
    expect(view.error).toBe(scriptError);
    expect(view.output_encoding).toBe(OutputEncoding.JSON);
    expect(decoded(view)).toEqual(out);
  });

  it("is kept per attempt through retries: the current attempt's shows, an earlier one's is not replaced", async () => {
    const { jobId, ready } = await submit([task("corral/RunScript", { maxRetries: 1 })]);
    const first = ready[0]!;
    await ledger.reportResults({ results: [started(first), failed(first, { output: json({ exitCode: 1, stdoutTail: "", stderrTail: "one" }) })] });
    // The retry queued: its attempt has no output yet.
    const queued = await ledger.getTask(team, jobId, first.taskId);
    expect(queued.state).toBe(QUEUED);
    expect(queued.output_data ?? undefined).toBeUndefined();
    const second = { taskId: first.taskId, attempt: 2 };
    await ledger.reportResults({ results: [started(second), failed(second, { output: json({ exitCode: 2, stdoutTail: "", stderrTail: "two" }) })] });
    const view = await ledger.getTask(team, jobId, first.taskId);
    expect(view.state).toBe(FAILED);
    expect(view.attempt).toBe(2);
    expect(decoded(view)).toEqual({ exitCode: 2, stdoutTail: "", stderrTail: "two" });
    expect(await storedAttempts(first.taskId)).toEqual([1, 2]);
  });

  it("over the inline limit is not stored, and the failure stands as reported", async () => {
    const { jobId, ready } = await submit([task("corral/RunScript")]);
    const env = ready[0]!;
    const big = json({ exitCode: 3, stdoutTail: "x".repeat(maxOutputBytes), stderrTail: "" });
    const res = await ledger.reportResults({ results: [started(env), failed(env, { unrecoverable: true, error: "exit code 3", output: big })] });
    expect(res.outcomes.every((o) => o.reason === "")).toBe(true);
    const view = await ledger.getTask(team, jobId, env.taskId);
    expect(view.state).toBe(FAILED);
    expect(view.error).toBe("exit code 3");
    expect(view.output_data ?? undefined).toBeUndefined();
    expect(await storedAttempts(env.taskId)).toEqual([]);
  });

  it("of a failed optional dependency is not delivered to its dependant as a result", async () => {
    const { ready } = await submit([task("producer", { optional: true }), task("consumer", { dependsOn: [0] })]);
    const producer = ready[0]!;
    const res = await ledger.reportResults({ results: [started(producer), failed(producer, { unrecoverable: true, output: json({ partial: true }) })] });
    expect(await storedAttempts(producer.taskId)).toEqual([1]);
    const consumer = res.ready.find((e) => e.taskId !== producer.taskId);
    expect(consumer).toBeDefined();
    expect(consumer!.dependencyOutputs).toEqual([]);
  });

  it("leaves a computed dependency's output delivered as before", async () => {
    const { ready } = await submit([task("producer"), task("consumer", { dependsOn: [0] })]);
    const producer = ready[0]!;
    const res = await ledger.reportResults({ results: [started(producer), completed(producer, { output: json({ rows: 3 }) })] });
    const consumer = res.ready.find((e) => e.taskId !== producer.taskId);
    expect(consumer?.dependencyOutputs.map((d) => decoded({ output_data: Buffer.from(d.output!.data) }))).toEqual([{ rows: 3 }]);
  });
});
