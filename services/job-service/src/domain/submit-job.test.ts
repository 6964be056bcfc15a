import { Code } from "@connectrpc/connect";
import { JobState, TaskState } from "@corral/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobLedger, type JobLedger } from "../job-ledger.js";
import { countOutbox } from "../store/outbox-repository.js";
import {
  createJobsTestDb,
  createRecordingDispatcher,
  createTestClusters,
  task,
  type JobsTestDb,
  type RecordingDispatcher,
} from "../testing/job-test-kit.js";

let t: JobsTestDb;
let dispatcher: RecordingDispatcher;
let ledger: JobLedger;

beforeAll(async () => {
  t = await createJobsTestDb("jobs_submit");
  dispatcher = createRecordingDispatcher();
  ledger = createJobLedger({ db: t.db, clusters: createTestClusters(), dispatcher, maxInputBytes: 1024 });
});
afterAll(async () => {
  await t?.close();
});

async function errorOf(p: Promise<unknown>): Promise<{ code: Code; violations: { field: string }[] }> {
  try {
    await p;
  } catch (err) {
    return err as { code: Code; violations: { field: string }[] };
  }
  throw new Error("expected a failure");
}

async function codeOf(p: Promise<unknown>): Promise<Code | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return (err as { code?: Code }).code;
  }
}

describe("submitJob", () => {
  it("writes the job, its tasks and edges, and hands the tasks without dependencies to the broker", async () => {
    dispatcher.enqueued.length = 0;
    const { job, created } = await ledger.submitJob({
      teamId: "team-a",
      name: "first",
      clusterSlug: "",
      tasks: [task("a"), task("b", { dependsOn: [0] }), task("c", { clusterSlug: "gpu", input: new Uint8Array([1, 2, 3]) })],
    });
    expect(created).toBe(true);
    expect(job.state).toBe(JobState.SUBMITTED);
    expect(job.total).toBe(3);
    expect(job.queued).toBe(3);
    expect(job.cluster_slug).toBe("default-AbCdEfGhIjKlMn");
    expect(dispatcher.enqueued.map((e) => e.display).sort()).toEqual(["a", "c"]);
    const c = dispatcher.enqueued.find((e) => e.display === "c")!;
    expect(c.clusterId).toBe("team-a-gpu-id");
    expect(c.clusterSlug).toBe("gpu");
    expect(c.attempt).toBe(1);
    expect(c.teamId).toBe("team-a");
    expect(c.jobName).toBe("first");
    expect([...c.input]).toEqual([1, 2, 3]);
    // Dispatched rows leave the outbox.
    expect(await countOutbox(t.db)).toBe(0);
    const roots = await ledger.listTasks("team-a", { jobId: job.id, parentId: "", pageSize: 0, pageToken: "", includeInput: false });
    expect(roots.tasks.map((r) => r.display)).toEqual(["a", "b", "c"]);
    expect(roots.tasks[1]!.depends_on).toEqual([roots.tasks[0]!.id]);
    expect(roots.tasks.every((r) => r.state === TaskState.QUEUED)).toBe(true);
    // Only a depended-on task is marked as having dependants (finishing the others skips the lookup).
    const flags = await t.db.selectFrom("tasks").select(["display", "has_dependants"]).where("job_id", "=", job.id).orderBy("position").execute();
    expect(flags).toEqual([
      { display: "a", has_dependants: true },
      { display: "b", has_dependants: false },
      { display: "c", has_dependants: false },
    ]);
  });

  it("returns the same job for a repeated idempotency key, also when submitted concurrently", async () => {
    const input = { teamId: "team-a", name: "idem", clusterSlug: "", tasks: [task("a")], idempotencyKey: "key-1" };
    const first = await ledger.submitJob(input);
    const again = await ledger.submitJob(input);
    expect(again.created).toBe(false);
    expect(again.job.id).toBe(first.job.id);
    const racing = await Promise.all([1, 2, 3, 4].map(() => ledger.submitJob({ ...input, idempotencyKey: "key-2" })));
    expect(new Set(racing.map((r) => r.job.id)).size).toBe(1);
    expect(racing.filter((r) => r.created)).toHaveLength(1);
    // The key is per team.
    const other = await ledger.submitJob({ ...input, teamId: "team-b" });
    expect(other.created).toBe(true);
  });

  it("answers ALREADY_EXISTS when an idempotency key is reused for a different request", async () => {
    const input = { teamId: "team-a", name: "idem-diff", clusterSlug: "", tasks: [task("a")], idempotencyKey: "key-diff" };
    const first = await ledger.submitJob(input);
    expect(first.created).toBe(true);
    expect((await ledger.submitJob(input)).job.id).toBe(first.job.id);
    expect(await codeOf(ledger.submitJob({ ...input, name: "other name" }))).toBe(Code.AlreadyExists);
    await expect(ledger.submitJob({ ...input, name: "other name" })).rejects.toThrow(first.job.id);
    expect(await codeOf(ledger.submitJob({ ...input, tasks: [task("b")] }))).toBe(Code.AlreadyExists);
  });

  it("rejects dependencies on later or the same tasks, oversized inputs and bad identifiers", async () => {
    const base = { teamId: "team-a", name: "bad", clusterSlug: "" };
    const err = await errorOf(ledger.submitJob({ ...base, tasks: [task("a"), task("b"), task("c"), task("d", { dependsOn: [3] })] }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.violations[0]!.field).toBe("tasks[3].depends_on");
    expect(await codeOf(ledger.submitJob({ ...base, tasks: [task("a", { dependsOn: [1] }), task("b")] }))).toBe(Code.InvalidArgument);
    const big = await errorOf(ledger.submitJob({ ...base, tasks: [task("a"), task("b", { input: new Uint8Array(1025) })] }));
    expect(big.code).toBe(Code.InvalidArgument);
    expect(big.violations[0]!.field).toBe("tasks[1].input");
    expect(await codeOf(ledger.submitJob({ ...base, tasks: [task("a", { version: "1.0" })] }))).toBe(Code.InvalidArgument);
    expect(await codeOf(ledger.submitJob({ ...base, tasks: [] }))).toBe(Code.InvalidArgument);
    expect(await codeOf(ledger.submitJob({ ...base, name: " ", tasks: [task("a")] }))).toBe(Code.InvalidArgument);
  });

  it("answers NOT_FOUND for unknown clusters, of the job or of a task", async () => {
    const base = { teamId: "team-a", name: "clusters" };
    expect(await codeOf(ledger.submitJob({ ...base, clusterSlug: "nope", tasks: [task("a")] }))).toBe(Code.NotFound);
    expect(await codeOf(ledger.submitJob({ ...base, clusterSlug: "", tasks: [task("a", { clusterSlug: "nope" })] }))).toBe(
      Code.NotFound,
    );
  });

  it("scopes jobs by team", async () => {
    const { job } = await ledger.submitJob({ teamId: "team-a", name: "mine", clusterSlug: "", tasks: [task("a")] });
    expect(await codeOf(ledger.getJob("team-b", job.id))).toBe(Code.NotFound);
    expect(await codeOf(ledger.cancelJob("team-b", job.id))).toBe(Code.NotFound);
    expect(await codeOf(ledger.retryJob("team-b", job.id))).toBe(Code.NotFound);
  });
});
