// kill -9 of job-service while brokers report result batches, twice: brokers retry until it is back,
// a batch whose answer was lost is answered "already applied", and nothing is applied twice.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFaultSuite, type FaultSuite } from "./support/fault-suite.js";
import { metricValue, report, untilTrue } from "./support/wait.js";

const JOBS = 3;
const PER_JOB = 1_000;

describe("fault: job-service killed during result batches", () => {
  let suite: FaultSuite;
  beforeAll(async () => {
    suite = await startFaultSuite({ label: "fault_jobs" });
  }, 120_000);
  afterAll(async () => {
    await suite?.stop();
  });

  it("loses nothing and applies nothing twice", async () => {
    for (let i = 0; i < 3; i++) await suite.startRunner(40);
    const ids = await suite.submitWorkload(JOBS, PER_JOB, 50);
    const broker = suite.brokers[0]!;
    const results = () => metricValue(broker.url, "corral_broker_results_total");
    await untilTrue("results flowing", async () => (await results()) > 500);
    await suite.restart("jobs", true);
    const after = await results();
    await untilTrue("results flowing again", async () => (await results()) > after + 500, 60_000);
    await suite.restart("jobs", true);
    await suite.waitJobs(ids, 150_000);
    const result = await suite.check(ids, PER_JOB);
    const retries = await metricValue(broker.url, "corral_broker_ledger_retries_total");
    report("job-service kill -9 during result batches (twice)", { ...result, faults: 2, brokerRetries: retries });
    expect(result.completedJobs).toBe(JOBS);
    expect(result.lost).toBe(0);
    expect(result.duplicates).toBe(0);
    expect(result.tasksRecorded).toBe(result.tasksExpected);
    expect(retries).toBeGreaterThan(0);
  }, 240_000);
});
