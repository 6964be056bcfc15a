// kill -9 of a runner mid-task, and a runner frozen (SIGSTOP) past its leases: their tasks are
// redelivered after lease expiry, the frozen runner's late results are rejected, and the ledger
// records every task exactly once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFaultSuite, type FaultSuite } from "./support/fault-suite.js";
import { DispatchService } from "@corral/proto";
import { createServiceClient } from "@corral/server-kit";
import { report, untilTrue } from "./support/wait.js";

const JOBS = 3;
const PER_JOB = 1_000;

describe("fault: runner killed mid-task", () => {
  let suite: FaultSuite;
  beforeAll(async () => {
    suite = await startFaultSuite({ label: "fault_runner" });
  }, 120_000);
  afterAll(async () => {
    await suite?.stop();
  });

  it("redelivers the killed runner's tasks and records each task once", async () => {
    const [a, b, c] = [await suite.startRunner(40), await suite.startRunner(40), await suite.startRunner(40)];
    const ids = await suite.submitWorkload(JOBS, PER_JOB, 100);
    // Each wait has its own deadline, all of them within the test's: a failure names its step.
    await untilTrue("runners busy", () => a!.executions() > 200 && b!.executions() > 200, 30_000);
    await a!.kill9();
    // Frozen past its lease duration (3 s): the broker expires its leases and hands the tasks out again.
    b!.child.kill("SIGSTOP");
    await suite.startRunner(40);
    await untilTrue("work moves on without the frozen runner", async () => c!.executions() > 600, 45_000);
    // The frozen runner's leases expire (lease duration 3 s) while it cannot heartbeat.
    const dispatch = createServiceClient(DispatchService, { baseUrl: suite.brokers[0]!.url, apiKey: suite.env.CORRAL_SERVICE_KEY! });
    const frozen = `-${b!.child.pid}-`;
    await untilTrue(
      "leases of the frozen runner expire",
      async () => (await dispatch.listSessions({})).sessions.some((s) => s.runnerId.includes(frozen) && s.leases === 0),
      45_000,
    );
    b!.child.kill("SIGCONT");
    await suite.waitJobs(ids, 100_000);
    const result = await suite.check(ids, PER_JOB);
    report("runner kill -9 + runner frozen past its leases", { ...result, faults: 2 });
    expect(result.completedJobs).toBe(JOBS);
    expect(result.lost).toBe(0);
    expect(result.duplicates).toBe(0);
    expect(result.tasksRecorded).toBe(result.tasksExpected);
    expect(result.extraAttempts).toBeGreaterThan(0);
    await untilTrue("the frozen runner's late results are rejected", () => b!.output().includes("result rejected as stale"), 20_000);
  }, 240_000);
});
