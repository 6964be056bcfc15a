// Redis (the test's own server) killed and restarted empty under load: every queue, lease and
// dedupe record is gone. The broker notices the missing marker key and asks job-service to
// resynchronise (running attempts expire, queued tasks are sent again from Postgres), and the
// ledger records every task exactly once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFaultSuite, type FaultSuite } from "./support/fault-suite.js";
import { startOwnRedis, type OwnRedis } from "./support/own-servers.js";
import { report, untilTrue } from "./support/wait.js";

const JOBS = 3;
const PER_JOB = 1_000;

describe("fault: Redis restarted empty", () => {
  let redis: OwnRedis;
  let suite: FaultSuite;
  beforeAll(async () => {
    redis = await startOwnRedis();
    suite = await startFaultSuite({ label: "fault_redis", redisUrl: redis.url, brokers: 2 });
  }, 120_000);
  afterAll(async () => {
    await suite?.stop();
    await redis?.stop();
  });

  it("rebuilds the queues from Postgres and records each task once", async () => {
    const a = await suite.startRunner(40);
    await suite.startRunner(40);
    const ids = await suite.submitWorkload(JOBS, PER_JOB, 100);
    await untilTrue("runners busy", () => a.executions() > 300);
    await redis.restartEmpty();
    await untilTrue("a broker asked job-service to resynchronise", () => suite.jobs.output().includes("dispatch resynchronised"), 60_000);
    await suite.waitJobs(ids, 150_000);
    const result = await suite.check(ids, PER_JOB);
    const resyncs = suite.jobs.output().split("dispatch resynchronised").length - 1;
    report("redis killed and restarted empty", { ...result, faults: 1, resyncs });
    expect(result.completedJobs).toBe(JOBS);
    expect(result.lost).toBe(0);
    expect(result.duplicates).toBe(0);
    expect(result.tasksRecorded).toBe(result.tasksExpected);
    expect(resyncs).toBe(1);
  }, 240_000);
});
