// Per-team submission quotas: the token bucket (with a test clock) and the open-task limit.
import { Code } from "@connectrpc/connect";
import { DomainError } from "@corral/server-kit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobLedger } from "./job-ledger.js";
import { createSubmitQuotas, readSubmitQuotas } from "./submit-quotas.js";
import { createJobsTestDb, createRecordingDispatcher, createTestClusters, task, type JobsTestDb } from "./testing/job-test-kit.js";

async function rejection(p: Promise<unknown>): Promise<DomainError> {
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

  it("refuses a burst above the rate per team, with the wait until the next token", () => {
    let now = 1_000_000;
    const quotas = createSubmitQuotas({ queuedTasks: 1_000, submissionsPerSecond: 4 }, { now: () => now });
    for (let i = 0; i < 4; i++) quotas.admit("team-rate");
    const err = refusal(() => quotas.admit("team-rate"));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.metadata["retry-after-ms"]).toBe("250");
    quotas.admit("team-other"); // another team has its own bucket
    now += 250;
    quotas.admit("team-rate");
    expect(() => quotas.admit("team-rate")).toThrow(DomainError);
  });

  it("counts open tasks of the team in the ledger, at once across submissions, and frees them as tasks end", async () => {
    const quotas = createSubmitQuotas({ queuedTasks: 10, submissionsPerSecond: 1_000 });
    const ledger = createJobLedger({ db: t.db, clusters: createTestClusters(), dispatcher: createRecordingDispatcher(), quotas });
    const tasks = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => task(`${prefix}${i}`));
    const six = await ledger.submitJob({ teamId: "team-q", name: "six", clusterSlug: "", tasks: tasks("t", 6) });
    const err = await rejection(ledger.submitJob({ teamId: "team-q", name: "five", clusterSlug: "", tasks: tasks("u", 5) }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.message).toMatch(/quota of 10 open tasks \(queued or running/);
    expect(Number(err.metadata["retry-after-ms"])).toBeGreaterThan(0);
    await ledger.submitJob({ teamId: "team-q", name: "four", clusterSlug: "", tasks: tasks("v", 4) });
    expect((await rejection(ledger.submitJob({ teamId: "team-q", name: "one", clusterSlug: "", tasks: tasks("w", 1) }))).code).toBe(
      Code.ResourceExhausted,
    );
    await ledger.submitJob({ teamId: "team-elsewhere", name: "ten", clusterSlug: "", tasks: tasks("x", 10) });
    // Canceling the job of six frees its six.
    await ledger.cancelJob("team-q", six.job.id);
    await ledger.submitJob({ teamId: "team-q", name: "six again", clusterSlug: "", tasks: tasks("y", 6) });
  });
});

function refusal(fn: () => void): DomainError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DomainError);
    return err as DomainError;
  }
  throw new Error("expected a refusal");
}
