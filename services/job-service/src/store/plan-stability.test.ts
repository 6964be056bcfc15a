// Statements of the result path read the tasks of a batch by their ids, whatever the planner
// believes about the rest of the table: a fan-out inserted after the last ANALYZE (statistics that
// say no task has a parent) must not turn counting down a parent into a scan of all its children.
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobLedger, type JobLedger } from "../job-ledger.js";
import { completed, createJobsTestDb, createRecordingDispatcher, createTestClusters, started, task, type JobsTestDb, type RecordingDispatcher } from "../testing/job-test-kit.js";
import { lockJobsOfTasks } from "./job-repository.js";
import { releaseParentsStatement } from "./task-repository.js";

let t: JobsTestDb;
let dispatcher: RecordingDispatcher;
let ledger: JobLedger;
const team = "team-plans";

beforeAll(async () => {
  t = await createJobsTestDb("jobs_plan_stability");
  dispatcher = createRecordingDispatcher();
  ledger = createJobLedger({ db: t.db, clusters: createTestClusters(), dispatcher });
});
afterAll(async () => {
  await ledger?.relay.close();
  await t?.close();
});

/** Every index a plan reads, by name. */
function indexesOf(plan: unknown): string[] {
  const out: string[] = [];
  const walk = (node: Record<string, unknown>) => {
    if (typeof node["Index Name"] === "string") out.push(node["Index Name"]);
    for (const child of (node["Plans"] as Record<string, unknown>[] | undefined) ?? []) walk(child);
  };
  walk(plan as Record<string, unknown>);
  return out;
}

async function explain(statement: ReturnType<typeof releaseParentsStatement>): Promise<string[]> {
  const { rows } = await sql<{ "QUERY PLAN": [{ Plan: unknown }] }>`explain (format json) ${statement}`.execute(t.db);
  return indexesOf(rows[0]!["QUERY PLAN"][0].Plan);
}

describe("plans of the result path under statistics from before a fan-out", () => {
  it("count down a parent through the done tasks' ids, not the parent's children", async () => {
    // Statistics taken while no task had a parent.
    await ledger.submitJob({ teamId: team, name: "roots", clusterSlug: "", tasks: Array.from({ length: 50 }, (_, i) => task(`r${i}`)) });
    await sql`analyze tasks`.execute(t.db);
    dispatcher.enqueued.length = 0;
    await ledger.submitJob({ teamId: team, name: "fan-out", clusterSlug: "", tasks: [task("p")] });
    const p = dispatcher.enqueued[0]!;
    dispatcher.enqueued.length = 0;
    await ledger.reportResults({ results: [started(p), completed(p, { subtasks: Array.from({ length: 3_000 }, (_, i) => task(`s${i}`)) })] });
    const done = dispatcher.enqueued.slice(0, 10).map((e) => e.taskId);
    expect(done).toHaveLength(10);

    const parents = await explain(releaseParentsStatement(done));
    expect(parents).not.toContain("tasks_parent_id");
    expect(parents).toContain("tasks_pkey");
    // And the statements do what they say.
    expect((await lockJobsOfTasks(t.db, done)).map((j) => j.id)).toEqual([p.jobId]);
    const [released] = (await releaseParentsStatement(done).execute(t.db)).rows;
    expect(released).toMatchObject({ id: p.taskId, open_children: 2_990 });
  });
});
