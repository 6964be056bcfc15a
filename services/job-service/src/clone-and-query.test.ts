// CloneJob and QueryJobs' id range and direction, through the ledger against Postgres.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { InvalidArgumentError, NotFoundError } from "@corral/server-kit";
import { QueryJobsRequestSchema, TaskDefaultsSchema } from "@corral/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobLedger, type JobLedger } from "./job-ledger.js";
import { createJobsTestDb, createRecordingDispatcher, createTestClusters, task, type JobsTestDb, type RecordingDispatcher } from "./testing/job-test-kit.js";

let t: JobsTestDb;
let dispatcher: RecordingDispatcher;
let ledger: JobLedger;
const team = "team-a";

beforeAll(async () => {
  t = await createJobsTestDb("jobs_clone_query");
  dispatcher = createRecordingDispatcher();
  ledger = createJobLedger({ db: t.db, clusters: createTestClusters(), dispatcher });
});
afterAll(async () => {
  await t?.close();
});

const roots = (jobId: string) =>
  t.db.selectFrom("tasks").selectAll().where("job_id", "=", jobId).where("parent_id", "is", null).orderBy("position").execute();

/** What the edge answers for the error a call rejects with. */
const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    if (err instanceof NotFoundError) return Code.NotFound;
    if (err instanceof InvalidArgumentError) return Code.InvalidArgument;
    throw err;
  }
  return undefined;
};

describe("CloneJob", () => {
  it("submits the root tasks again as a new job on the same clusters, with inputs, retries, scheduling and dependencies", async () => {
    const { job } = await ledger.submitJob({
      teamId: team,
      name: "nightly",
      clusterSlug: "gpu",
      tasks: [
        task("my/Root", { input: new TextEncoder().encode('{"n":1}'), maxRetries: 3, priority: 7, executionTimeout: durationFromMs(60_000) }),
        task("my/Other", { clusterSlug: "cpu", optional: true, dependsOn: [0] }),
      ],
      taskDefaults: create(TaskDefaultsSchema, { scheduleToStartTimeout: durationFromMs(30_000) }),
    });
    const { job: clone, created } = await ledger.cloneJob(team, job.id, { clusterSlug: "", name: "" });
    expect(created).toBe(true);
    expect(clone.id).not.toBe(job.id);
    expect(clone.name).toBe("nightly");
    expect(clone.cluster_slug).toBe("gpu");
    expect(clone.task_defaults).toEqual(job.task_defaults);
    const [a, b] = await roots(clone.id);
    expect([a!.identifier_name, a!.cluster_slug, a!.input.toString(), a!.max_retries, a!.priority, a!.exec_timeout_ms]).toEqual([
      "my/Root",
      "gpu",
      '{"n":1}',
      3,
      7,
      60_000,
    ]);
    expect([b!.identifier_name, b!.cluster_slug, b!.optional, b!.waiting_deps]).toEqual(["my/Other", "cpu", true, 1]);
    const deps = await t.db.selectFrom("task_deps").selectAll().where("task_id", "=", b!.id).execute();
    expect(deps.map((d) => d.depends_on_id)).toEqual([a!.id]);
  });

  it("runs every root task on the cluster named, under a new name when given", async () => {
    const { job } = await ledger.submitJob({ teamId: team, name: "moved", clusterSlug: "gpu", tasks: [task("my/Root"), task("my/Other", { clusterSlug: "gpu" })] });
    const { job: clone } = await ledger.cloneJob(team, job.id, { clusterSlug: "cpu", name: "moved again" });
    expect([clone.name, clone.cluster_slug]).toEqual(["moved again", "cpu"]);
    expect((await roots(clone.id)).map((r) => r.cluster_slug)).toEqual(["cpu", "cpu"]);
  });

  it("is NOT_FOUND for another team's job or an unknown cluster", async () => {
    const { job } = await ledger.submitJob({ teamId: team, name: "mine", clusterSlug: "", tasks: [task("my/Root")] });
    expect(await codeOf(ledger.cloneJob("team-b", job.id, { clusterSlug: "", name: "" }))).toBe(Code.NotFound);
    expect(await codeOf(ledger.cloneJob(team, job.id, { clusterSlug: "nowhere", name: "" }))).toBe(Code.NotFound);
  });
});

describe("QueryJobs by id range and direction", () => {
  it("lists the jobs from id_from (inclusive) to id_to (exclusive), oldest or newest first", async () => {
    const ids: string[] = [];
    for (const name of ["r1", "r2", "r3", "r4"]) {
      ids.push((await ledger.submitJob({ teamId: "team-range", name, clusterSlug: "", tasks: [task("my/Root")] })).job.id);
    }
    const q = (init: MessageInitShape<typeof QueryJobsRequestSchema>) =>
      ledger.queryJobs("team-range", create(QueryJobsRequestSchema, init)).then((p) => p.jobs.map((j) => j.name));
    expect(await q({ idFrom: ids[1], idTo: ids[3] })).toEqual(["r3", "r2"]);
    expect(await q({ idFrom: ids[1], idTo: ids[3], ascending: true })).toEqual(["r2", "r3"]);
    expect(await q({ idFrom: ids[2] })).toEqual(["r4", "r3"]);
    expect(await q({ idTo: ids[1], ascending: true })).toEqual(["r1"]);
    expect(await codeOf(q({ idFrom: ids[3], idTo: ids[0] }))).toBe(Code.InvalidArgument);
  });
});
