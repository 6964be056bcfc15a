// Ledger throughput: submit one job of 10,000 tasks, then apply their results as a broker would,
// in batches of 1,000 tasks: a started batch, then a completed batch; both in one call; one
// completion per task with its start folded in. Prints JSON.
// Run: npx tsx services/job-service/bench/ledger-bench.ts [tasks] [batch]
import { performance } from "node:perf_hooks";
import { createDatabase, migrateToLatest } from "@corral/server-kit";
import { createTestDatabase } from "@corral/server-kit/testing";
import type { TaskEnvelope, TaskResult } from "@corral/proto";
import { createJobLedger } from "../../services/job-service/src/job-ledger.js";
import { JOBS_SCHEMA, type JobsDatabase } from "../../services/job-service/src/store/database.js";
import { jobsMigrations } from "../../services/job-service/src/store/migrations/index.js";
import { completed, createTestClusters, started, task } from "../../services/job-service/src/testing/job-test-kit.js";

const taskCount = Number(process.argv[2] ?? 10_000);
const batchSize = Number(process.argv[3] ?? 1_000);

const testDb = await createTestDatabase("jobs_bench");
const db = createDatabase<JobsDatabase>({ url: testDb.url, schema: JOBS_SCHEMA });
try {
  await migrateToLatest(db, JOBS_SCHEMA, jobsMigrations);
  const enqueued: TaskEnvelope[] = [];
  const ledger = createJobLedger({
    db,
    clusters: createTestClusters(),
    dispatcher: { enqueue: async (t) => void enqueued.push(...t), revoke: async () => {} },
  });
  const input = new Uint8Array(64);
  const tasks = Array.from({ length: taskCount }, (_, i) => task(`bench-${i % 10}`, { input, maxRetries: 1 }));

  let t0 = performance.now();
  const { job } = await ledger.submitJob({ teamId: "bench", name: "bench", clusterSlug: "", tasks });
  const submitMs = performance.now() - t0;
  if (enqueued.length !== taskCount) throw new Error(`expected ${taskCount} ready tasks, got ${enqueued.length}`);

  const startMs: number[] = [];
  const completeMs: number[] = [];
  t0 = performance.now();
  for (let i = 0; i < taskCount; i += batchSize) {
    const batch = enqueued.slice(i, i + batchSize);
    let t = performance.now();
    await ledger.reportResults({ results: batch.map((e) => started(e)) });
    startMs.push(performance.now() - t);
    t = performance.now();
    const out = await ledger.reportResults({
      results: batch.map((e) => completed(e, { progress: [{ label: "tiles", total: 1, done: 1 }] })),
      dispatched: batch.map((e) => ({ taskId: e.taskId, attempt: e.attempt, $typeName: "corral.jobs.v1.DispatchAck" as const })),
    });
    completeMs.push(performance.now() - t);
    if (out.outcomes.some((o) => o.status !== 1)) throw new Error("a result did not apply");
  }
  const resultsMs = performance.now() - t0;

  /** Submits a fresh job of `tasks` and applies its results in batches as `resultsOf` makes them; ms. */
  const applyJob = async (name: string, resultsOf: (e: TaskEnvelope) => TaskResult[]): Promise<number> => {
    enqueued.length = 0;
    await ledger.submitJob({ teamId: "bench", name, clusterSlug: "", tasks });
    const envelopes = [...enqueued];
    const start = performance.now();
    for (let i = 0; i < taskCount; i += batchSize) {
      await ledger.reportResults({ results: envelopes.slice(i, i + batchSize).flatMap(resultsOf) });
    }
    return performance.now() - start;
  };

  // A broker that reports start and completion together: one call of 2,000 results per 1,000 tasks.
  const combinedMs = await applyJob("combined", (e) => [started(e), completed(e)]);

  // A broker that folds each start into its completion (TaskCompleted.started): 1,000 results.
  const foldedMs = await applyJob("folded", (e) => {
    const end = completed(e);
    const start = started(e);
    if (end.outcome.case === "completed" && start.outcome.case === "started") end.outcome.value.started = start.outcome.value;
    return [end];
  });

  // Subtasks: one completion spawning 10,000 subtasks in one result.
  const root = await ledger.submitJob({ teamId: "bench", name: "fanout", clusterSlug: "", tasks: [task("root")] });
  const rootEnv = enqueued[enqueued.length - 1]!;
  t0 = performance.now();
  const fan = await ledger.reportResults({ results: [started(rootEnv), completed(rootEnv, { subtasks: tasks })] });
  const fanoutMs = performance.now() - t0;
  if (fan.ready.length !== taskCount) throw new Error("fan-out did not ready every subtask");

  const final = await ledger.getJob("bench", job.id);
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log(
    JSON.stringify(
      {
        tasks: taskCount,
        batch: batchSize,
        jobState: final.job.state,
        submitMs: Math.round(submitMs),
        submitTasksPerSec: Math.round(taskCount / (submitMs / 1000)),
        startedBatchMsAvg: Math.round(avg(startMs)),
        completedBatchMsAvg: Math.round(avg(completeMs)),
        resultsMs: Math.round(resultsMs),
        // Each task gets two results (started, completed).
        tasksPerSec: Math.round(taskCount / (resultsMs / 1000)),
        resultsPerSec: Math.round((2 * taskCount) / (resultsMs / 1000)),
        combinedBatchesMs: Math.round(combinedMs),
        combinedTasksPerSec: Math.round(taskCount / (combinedMs / 1000)),
        foldedBatchesMs: Math.round(foldedMs),
        foldedTasksPerSec: Math.round(taskCount / (foldedMs / 1000)),
        fanoutSubtasks: taskCount,
        fanoutMs: Math.round(fanoutMs),
        fanoutJob: root.job.id,
      },
      null,
      2,
    ),
  );
} finally {
  await db.destroy();
  await testDb.drop();
}
