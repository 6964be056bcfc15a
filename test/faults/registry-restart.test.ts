// The registry killed and restarted while runners work: keys and clusters verified before keep
// working from the other services' caches, so runners go on, runners that reconnect are welcomed,
// and submissions succeed while the registry is down.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFaultSuite, type FaultSuite } from "./support/fault-suite.js";
import { report, untilTrue } from "./support/wait.js";

const JOBS = 3;
const PER_JOB = 1_000;

describe("fault: registry restarted", () => {
  let suite: FaultSuite;
  beforeAll(async () => {
    suite = await startFaultSuite({ label: "fault_registry" });
  }, 120_000);
  afterAll(async () => {
    await suite?.stop();
  });

  it("keeps runners and submissions working within the caches", async () => {
    const a = await suite.startRunner(40);
    const b = await suite.startRunner(40);
    const ids = await suite.submitWorkload(JOBS - 1, PER_JOB, 100);
    await untilTrue("runners busy", () => a.executions() > 300);
    await suite.registry.kill9();
    // Longer than the services' fresh-cache times (keys 2 s, clusters 5 s): the stale answers carry on.
    await new Promise((r) => setTimeout(r, 6_000));
    // A runner that reconnects while the registry is down is welcomed by the broker's cache.
    await b.kill9();
    const c = await suite.startRunner(40);
    // A submission while the registry is down is accepted, and its tasks run, on the new runner too.
    // (Submitted after the runner is welcomed: the earlier jobs may well be done by now.)
    const before = a.executions() + c.executions();
    ids.push(...(await suite.submitWorkload(1, PER_JOB, 100)));
    await untilTrue("work goes on without the registry", () => a.executions() + c.executions() > before + 300 && c.executions() > 0, 60_000);
    await suite.restart("registry", true);
    await suite.waitJobs(ids, 150_000);
    const result = await suite.check(ids, PER_JOB);
    report("registry kill -9 and restart", { ...result, faults: 1 });
    expect(result.completedJobs).toBe(JOBS);
    expect(result.lost).toBe(0);
    expect(result.duplicates).toBe(0);
    expect(result.tasksRecorded).toBe(result.tasksExpected);
  }, 240_000);
});
