import { readServiceConfig } from "@corral/server-kit";
import { createTestDatabase, type TestDatabase } from "@corral/server-kit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobsComponent } from "./component.js";
import { createRecordingDispatcher, createTestClusters, task } from "./testing/job-test-kit.js";

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase("jobs_component");
});
afterAll(async () => {
  await t?.drop();
});

describe("createJobsComponent", () => {
  it("migrates (twice at once), serves the domain and closes idempotently", async () => {
    const config = readServiceConfig(0, { DATABASE_URL: t.url });
    const options = { clusters: createTestClusters(), dispatcher: createRecordingDispatcher(), env: { CORRAL_MAX_INPUT_BYTES: "10" } };
    const [a, b] = await Promise.all([createJobsComponent(config, options), createJobsComponent(config, options)]);
    try {
      await a.check();
      expect(a.mounts.map((m) => m.service.typeName)).toEqual(["corral.jobs.v1.JobService", "corral.jobs.v1.TaskLedgerService", "corral.jobs.v1.AutomationService", "corral.jobs.v1.TaskLogService", "corral.jobs.v1.TaskLogIngestService"]);
      expect(a.mounts[1]!.internal).toBe(true);
      a.start?.();
      const { created } = await a.jobs.ledger.submitJob({ teamId: "t", name: "n", clusterSlug: "", tasks: [task("x")] });
      expect(created).toBe(true);
      await expect(
        b.jobs.ledger.submitJob({ teamId: "t", name: "n", clusterSlug: "", tasks: [task("x", { input: new Uint8Array(11) })] }),
      ).rejects.toMatchObject({ code: 3 });
    } finally {
      await a.close();
      await a.close();
      await b.close();
    }
  });
});
