// Concurrency keys and rate limits in job-service against the real database: carried from a
// submission (roots, subtasks, retries) to the broker's envelope and into the task view, refused
// with the field named when malformed, and explained while a task waits behind them.
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { ConcurrencyLimitSchema, RateLimitSchema } from "@corral/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
const team = "team-gates";

beforeAll(async () => {
  t = await createJobsTestDb("jobs_task_gates");
  dispatcher = createRecordingDispatcher();
  ledger = createJobLedger({ db: t.db, clusters: createTestClusters(), dispatcher, sweepAfterMs: 60_000 });
});
afterAll(async () => {
  await ledger?.relay.close();
  await t?.close();
});

const sentFor = (jobId: string) => dispatcher.enqueued.filter((e) => e.jobId === jobId);
const key = (k: string, limit: number) => create(ConcurrencyLimitSchema, { key: k, limit });
const rate = (name: string, limit: number, periodMs: number) => create(RateLimitSchema, { name, limit, period: durationFromMs(periodMs) });

async function view(jobId: string, id: string) {
  const [row] = await findTasks(t.db, jobId, [id]);
  return toTask(row!);
}

describe("concurrency keys and rate limits", () => {
  it("carries a task's key and rate limit to the broker, subtasks and retries included, and into the task view", async () => {
    const { job } = await ledger.submitJob({
      teamId: team,
      name: "gates",
      clusterSlug: "",
      tasks: [task("root", { concurrency: key("acme", 2), rateLimit: rate("emails", 10, 1_000), maxRetries: 1 })],
    });
    const [root] = sentFor(job.id);
    expect(root!.concurrency).toMatchObject({ key: "acme", limit: 2 });
    expect(root!.rateLimit).toMatchObject({ name: "emails", limit: 10 });
    const retried = await ledger.reportResults({ results: [started(root!), failed(root!, { countsAsRetry: true })] });
    const retry = retried.ready.find((e) => e.attempt === 2)!;
    expect(retry.concurrency?.key).toBe("acme");
    expect(retry.rateLimit?.period).toEqual(durationFromMs(1_000));
    const out = await ledger.reportResults({ results: [started(retry), completed(retry, { subtasks: [task("sub", { concurrency: key("globex", 1) })] })] });
    expect(out.ready[0]!.concurrency).toMatchObject({ key: "globex", limit: 1 });
    expect(out.ready[0]!.rateLimit).toBeUndefined();
    const v = await view(job.id, root!.taskId);
    expect(v.concurrency).toMatchObject({ key: "acme", limit: 2 });
    expect(v.rateLimit).toMatchObject({ name: "emails", limit: 10 });
  });

  it("says a task waits for its key at its limit, or for its rate limit", async () => {
    const { job } = await ledger.submitJob({
      teamId: team,
      name: "waits",
      clusterSlug: "",
      tasks: [
        ...Array.from({ length: 3 }, (_, i) => task(`k${i}`, { concurrency: key("initech", 2) })),
        ...Array.from({ length: 3 }, (_, i) => task(`r${i}`, { rateLimit: rate("sms", 2, 60_000) })),
      ],
    });
    const sent = sentFor(job.id);
    const [k0, k1, k2, r0, r1, r2] = sent;
    expect((await view(job.id, k2!.taskId)).waitReason).toBe("waits for a runner");
    await ledger.reportResults({ results: [started(k0!), started(k1!), started(r0!), started(r1!)] });
    expect((await view(job.id, k2!.taskId)).waitReason).toBe("key initech at its limit 2/2");
    expect((await view(job.id, r2!.taskId)).waitReason).toBe("rate limit sms 2/1m");
    await ledger.reportResults({ results: [completed(k0!)] });
    expect((await view(job.id, k2!.taskId)).waitReason).toBe("waits for a runner");
  });

  it("refuses a malformed key or rate limit, naming the field", async () => {
    const submit = (s: Parameters<typeof task>[1]) => ledger.submitJob({ teamId: team, name: "bad", clusterSlug: "", tasks: [task("x", s)] });
    await expect(submit({ concurrency: key("a\u0000b", 1) })).rejects.toThrow(/tasks\[0\]\.concurrency\.key/);
    await expect(submit({ concurrency: key("a", 0) })).rejects.toThrow(/tasks\[0\]\.concurrency\.limit/);
    await expect(submit({ rateLimit: rate("r", 1, 0) })).rejects.toThrow(/tasks\[0\]\.rate_limit\.period/);
  });
});
