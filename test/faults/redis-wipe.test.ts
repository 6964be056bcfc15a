// Redis (the test's own server) killed and restarted empty under load: every queue, lease and
// dedupe record is gone. The broker notices the missing marker key and asks job-service to
// resynchronise (running attempts expire, queued tasks are sent again from Postgres), and the
// ledger records every task exactly once. Also when the wipe happens while no broker runs: the
// broker that starts finds no marker and resynchronises too.
import { DispatchService } from "@corral/proto";
import { createServiceClient } from "@corral/server-kit";
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
    // Resyncs for the wipe (the broker's first start also asked, with another reason).
    const wipeResyncs = () =>
      suite.jobs
        .output()
        .split("\n")
        .filter((l) => l.includes("dispatch resynchronised") && l.includes('"reason":"redis marker missing"')).length;
    await untilTrue("a broker asked job-service to resynchronise", () => wipeResyncs() > 0, 60_000);
    await suite.waitJobs(ids, 150_000);
    const result = await suite.check(ids, PER_JOB);
    const resyncs = wipeResyncs();
    report("redis killed and restarted empty", { ...result, faults: 1, resyncs });
    expect(result.completedJobs).toBe(JOBS);
    expect(result.lost).toBe(0);
    expect(result.duplicates).toBe(0);
    expect(result.tasksRecorded).toBe(result.tasksExpected);
    expect(resyncs).toBe(1);
  }, 240_000);

  it("brings back the queued tasks when Redis was wiped while no broker ran", async () => {
    // No runner: the jobs' root tasks wait in Redis (their outbox rows are gone once enqueued).
    await Promise.all(suite.runners.map((r) => r.stop()));
    const ids = await suite.submitWorkload(2, 50, 10);
    const dispatch = createServiceClient(DispatchService, { baseUrl: suite.proxy.url, apiKey: suite.env.CORRAL_SERVICE_KEY! });
    const queuedRoots = async () =>
      (await dispatch.getQueueStats({})).queues
        .filter((q) => q.identifier?.name === "faults/Fan")
        .reduce((n, q) => n + Number(q.lag), 0);
    await untilTrue("both roots wait in Redis", async () => (await queuedRoots()) >= 2);
    await suite.killBroker(0);
    await suite.killBroker(1);
    await redis.restartEmpty();
    await suite.startBroker(0);
    await suite.startRunner(20);
    await suite.waitJobs(ids, 120_000);
    const result = await suite.check(ids, 50);
    report("redis restarted empty while no broker ran", { ...result, faults: 1 });
    expect(result.completedJobs).toBe(2);
    expect(result.lost).toBe(0);
    expect(result.duplicates).toBe(0);
  }, 240_000);
});
