// kill -9 of one of two broker replicas behind a load balancer: its runners reconnect to the other
// replica with their leases, and the ledger records every task exactly once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFaultSuite, type FaultSuite } from "./support/fault-suite.js";
import { metricValue, report, untilTrue } from "./support/wait.js";

const JOBS = 3;
const PER_JOB = 1_000;

describe("fault: broker replica killed", () => {
  let suite: FaultSuite;
  beforeAll(async () => {
    suite = await startFaultSuite({ label: "fault_broker", brokers: 2 });
  }, 120_000);
  afterAll(async () => {
    await suite?.stop();
  });

  it("moves runners to the live replica and records each task once", async () => {
    const runners = [];
    for (let i = 0; i < 4; i++) runners.push(await suite.startRunner(30));
    const [b0, b1] = suite.brokers;
    await untilTrue("both replicas serve runners", async () => (await metricValue(b0!.url, "corral_broker_sessions")) > 0);
    expect(await metricValue(b1!.url, "corral_broker_sessions")).toBeGreaterThan(0);
    const ids = await suite.submitWorkload(JOBS, PER_JOB, 100);
    await untilTrue("work under way on the replica to kill", async () => (await metricValue(b0!.url, "corral_broker_assignments_total")) > 300);
    await suite.killBroker(0);
    await untilTrue("every runner on the live replica", async () => (await metricValue(b1!.url, "corral_broker_sessions")) === runners.length, 60_000);
    await suite.waitJobs(ids, 150_000);
    const result = await suite.check(ids, PER_JOB);
    report("broker replica kill -9 (of two)", { ...result, faults: 1 });
    expect(result.completedJobs).toBe(JOBS);
    expect(result.lost).toBe(0);
    expect(result.duplicates).toBe(0);
    expect(result.tasksRecorded).toBe(result.tasksExpected);
  }, 240_000);
});
