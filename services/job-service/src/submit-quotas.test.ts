// Per-team submission quotas: the token bucket and the queued-task limit, with a test clock.
import { Code } from "@connectrpc/connect";
import { DomainError } from "@corral/server-kit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobLedger } from "./job-ledger.js";
import { createSubmitQuotas, readSubmitQuotas } from "./submit-quotas.js";
import { createJobsTestDb, createRecordingDispatcher, createTestClusters, task, type JobsTestDb } from "./testing/job-test-kit.js";

async function refusal(p: Promise<unknown>): Promise<DomainError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DomainError);
  return err as DomainError;
}

describe("submit quotas", () => {
  let t: JobsTestDb;
  beforeAll(async () => {
    t = await createJobsTestDb("quotas");
  });
  afterAll(async () => {
    await t?.close();
  });

  it("reads its limits from the environment, with generous defaults", () => {
    expect(readSubmitQuotas({})).toEqual({ queuedTasks: 1_000_000, submissionsPerSecond: 100 });
    expect(readSubmitQuotas({ CORRAL_QUOTA_QUEUED_TASKS: "10", CORRAL_QUOTA_SUBMISSIONS_PER_SECOND: "3" })).toEqual({
      queuedTasks: 10,
      submissionsPerSecond: 3,
    });
    expect(() => readSubmitQuotas({ CORRAL_QUOTA_QUEUED_TASKS: "0" })).toThrow(/CORRAL_QUOTA_QUEUED_TASKS/);
  });

  it("refuses a burst above the rate per team, with the wait until the next token", async () => {
    let now = 1_000_000;
    const quotas = createSubmitQuotas(t.db, { queuedTasks: 1_000, submissionsPerSecond: 4 }, { now: () => now });
    for (let i = 0; i < 4; i++) await quotas.admit("team-rate", 1);
    const err = await refusal(quotas.admit("team-rate", 1));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.metadata["retry-after-ms"]).toBe("250");
    await quotas.admit("team-other", 1); // another team has its own bucket
    now += 250;
    await quotas.admit("team-rate", 1);
    await expect(quotas.admit("team-rate", 1)).rejects.toBeInstanceOf(DomainError);
  });

  it("counts queued tasks of the team in the ledger, including submissions since the last count", async () => {
    const now = 5_000_000;
    const quotas = createSubmitQuotas(t.db, { queuedTasks: 10, submissionsPerSecond: 1_000 }, { now: () => now, queuedCacheMs: 60_000 });
    const ledger = createJobLedger({ db: t.db, clusters: createTestClusters(), dispatcher: createRecordingDispatcher(), quotas });
    await ledger.submitJob({ teamId: "team-q", name: "six", clusterSlug: "", tasks: Array.from({ length: 6 }, (_, i) => task(`t${i}`)) });
    const err = await refusal(ledger.submitJob({ teamId: "team-q", name: "five", clusterSlug: "", tasks: Array.from({ length: 5 }, (_, i) => task(`u${i}`)) }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(Number(err.metadata["retry-after-ms"])).toBeGreaterThan(0);
    await ledger.submitJob({ teamId: "team-q", name: "four", clusterSlug: "", tasks: Array.from({ length: 4 }, (_, i) => task(`v${i}`)) });
    // 10 queued now, counted locally within the cache time.
    expect((await refusal(quotas.admit("team-q", 1))).code).toBe(Code.ResourceExhausted);
    await quotas.admit("team-elsewhere", 10);
  });
});
