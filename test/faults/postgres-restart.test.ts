// Postgres (the test's own server) stopped hard and started again under load: submissions during
// the outage fail with UNAVAILABLE and succeed when retried, the services reconnect, brokers retry
// their result batches, and the ledger records every task exactly once.
import { Code, ConnectError } from "@connectrpc/connect";
import { JobService } from "@corral/proto";
import { rawTask } from "@corral/sdk";
import { createServiceClient } from "@corral/server-kit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFaultSuite, type FaultSuite } from "./support/fault-suite.js";
import { startOwnPostgres, type OwnPostgres } from "./support/own-servers.js";
import { report, untilTrue } from "./support/wait.js";

const JOBS = 3;
const PER_JOB = 1_000;

describe("fault: Postgres restarted", () => {
  let pg: OwnPostgres;
  let suite: FaultSuite;
  beforeAll(async () => {
    pg = await startOwnPostgres();
    suite = await startFaultSuite({ label: "fault_pg", databaseUrl: pg.url });
  }, 120_000);
  afterAll(async () => {
    await suite?.stop();
    await pg?.stop();
  });

  it("answers UNAVAILABLE during the outage and resumes after it", async () => {
    const a = await suite.startRunner(40);
    await suite.startRunner(40);
    const ids = await suite.submitWorkload(JOBS, PER_JOB, 100);
    await untilTrue("runners busy", () => a.executions() > 300);
    // A plain client without retries, to see the code the service answers.
    const jobs = createServiceClient(JobService, { baseUrl: suite.jobs.url, apiKey: suite.apiKey, timeoutMs: 10_000 });
    const submit = () =>
      jobs.submitJob({ name: "during-outage", clusterSlug: suite.clusterSlug, tasks: [rawTask({ name: "faults/Fan", version: "v1.0" }, { n: 10, ms: 10 })] });

    await pg.stopNow();
    const during = await submit().then(
      () => undefined,
      (err: unknown) => ConnectError.from(err),
    );
    expect(during?.code).toBe(Code.Unavailable);

    await pg.startAgain();
    let retried: Awaited<ReturnType<typeof submit>> | undefined;
    let unavailable = 0;
    await untilTrue(
      "a retried submission succeeds",
      async () => {
        try {
          retried = await submit();
          return true;
        } catch (err) {
          if (process.env.DEBUG_FAULT) console.log("retry:", ConnectError.from(err).message);
          expect(ConnectError.from(err).code).toBe(Code.Unavailable);
          unavailable++;
          return false;
        }
      },
      60_000,
    ).catch((err: unknown) => {
      if (process.env.DEBUG_FAULT) console.log("JOBS OUTPUT", suite.jobs.child.exitCode, suite.jobs.child.signalCode, suite.jobs.output().slice(-6000));
      throw err;
    });
    await suite.waitJobs([...ids, retried!.job!.id], 150_000);
    const result = await suite.check(ids, PER_JOB);
    report("postgres stopped (immediate) and restarted", { ...result, faults: 1, unavailableAnswers: unavailable + 1 });
    expect(result.completedJobs).toBe(JOBS);
    expect(result.lost).toBe(0);
    expect(result.duplicates).toBe(0);
    expect(result.tasksRecorded).toBe(result.tasksExpected);
  }, 240_000);
});
