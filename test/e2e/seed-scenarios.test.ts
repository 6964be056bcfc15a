// The scenarios of seeds 000 and 001 against the three services as separate processes, through
// the SDK as users write it: clusters with slugs and the default cluster, the MultiCluster
// workflow across two clusters, tasks that wait for a capable runner, and version matching.
import { Code } from "@connectrpc/connect";
import { JobState, TaskState, type Task as TaskRecord } from "@corral/proto";
import {
  ClusterNotFoundError,
  FailedPreconditionError,
  Task,
  rawTask,
  type Client,
  type ExecutionContext,
  type Runner,
} from "@corral/sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { dispatchClient, startRunner, suiteClient, suiteRunner, waitUntil } from "../support/clients.js";
import { startSuite, type Suite } from "../support/suite.js";

const slugPattern = (base: string) => new RegExp(`^${base}-[0-9A-Za-z]{14}$`);

class DummyTask extends Task {
  static override identifier = { name: "e2e/DummyTask", version: "v1.0" };
  override execute(ctx: ExecutionContext): void {
    ctx.setDisplay(`ran on ${ctx.task.clusterSlug}`);
  }
}

/** Seed 000: one subtask on its own cluster, one on another that depends on the first. */
class MultiCluster extends Task<{ otherCluster: string }> {
  static override identifier = { name: "e2e/MultiCluster", version: "v1.0" };
  override execute(ctx: ExecutionContext): void {
    // this submits a task to the same cluster as the one currently executing this task
    const sameCluster = ctx.submitSubtask(new DummyTask());
    // this task runs only on a runner in the other cluster, after the first one
    ctx.submitSubtask(new DummyTask(), { cluster: this.input.otherCluster, dependsOn: [sameCluster] });
  }
}

class VersionedV13 extends Task {
  static override identifier = { name: "e2e/Versioned", version: "v1.3" };
  override execute(ctx: ExecutionContext): void {
    ctx.setDisplay("v1.3");
  }
}
class VersionedV14 extends Task {
  static override identifier = { name: "e2e/Versioned", version: "v1.4" };
  override execute(ctx: ExecutionContext): void {
    ctx.setDisplay("v1.4");
  }
}
class VersionedV21 extends Task {
  static override identifier = { name: "e2e/Versioned", version: "v2.1" };
  override execute(ctx: ExecutionContext): void {
    ctx.setDisplay("v2.1");
  }
}

describe("seed scenarios (000, 001) over separate service processes", () => {
  let suite: Suite;
  let client: Client;
  const runners: Runner[] = [];

  beforeAll(async () => {
    suite = await startSuite({ label: "e2e-seeds" });
    client = suiteClient(suite);
  });
  afterEach(async () => {
    await Promise.all(runners.splice(0).map((r) => r.stop()));
  });
  afterAll(async () => {
    await suite?.stop();
  });

  async function run(runner: Runner): Promise<Runner> {
    runners.push(runner);
    await startRunner(runner);
    return runner;
  }

  async function subtasksOf(jobId: string): Promise<{ root: TaskRecord; subtasks: TaskRecord[] }> {
    const [root] = await client.jobs().tasks(jobId);
    return { root: root!, subtasks: await client.jobs().tasks(jobId, { parentId: root!.id }) };
  }

  it("creates, lists, finds and deletes clusters by slug, with a default cluster that cannot be deleted", async () => {
    const clusters = client.clusters();
    const testing = await clusters.create("testing");
    expect(testing.slug).toMatch(slugPattern("testing"));
    expect(testing.name).toBe("testing");
    expect(testing.isDefault).toBe(false);
    const production = await clusters.create("Production");
    expect(production.slug).toMatch(slugPattern("production"));
    expect(production.name).toBe("Production");
    const spaced = await clusters.create("GPU nodes: A100 / eu");
    expect(spaced.slug).toMatch(slugPattern("gpu-nodes-a100-eu"));

    // An empty slug is the team's default cluster, created on first use.
    const defaultCluster = await clusters.find();
    expect(defaultCluster.isDefault).toBe(true);
    expect((await clusters.find("")).id).toBe(defaultCluster.id);
    expect((await clusters.find(defaultCluster.slug)).isDefault).toBe(true);

    const found = await clusters.find(testing.slug);
    expect(found).toMatchObject({ id: testing.id, slug: testing.slug, name: "testing" });

    const all = await clusters.all();
    expect(all.map((c) => c.slug)).toEqual(expect.arrayContaining([defaultCluster.slug, testing.slug, production.slug, spaced.slug]));
    expect(all.filter((c) => c.isDefault)).toHaveLength(1);

    await clusters.delete(testing.slug);
    await expect(clusters.find(testing.slug)).rejects.toBeInstanceOf(ClusterNotFoundError);
    await expect(clusters.delete(testing.slug)).rejects.toMatchObject({ code: Code.NotFound });
    expect((await clusters.all()).map((c) => c.slug)).not.toContain(testing.slug);

    const refused = await clusters.delete(defaultCluster.slug).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(FailedPreconditionError);
    expect((refused as FailedPreconditionError).code).toBe(Code.FailedPrecondition);
    expect((await clusters.find()).id).toBe(defaultCluster.id);

    // Another team sees none of these: its own default cluster, and NOT_FOUND for ours.
    const other = await suite.newTeam("team-b");
    const otherClient = suiteClient(suite, other.key);
    await expect(otherClient.clusters().find(production.slug)).rejects.toBeInstanceOf(ClusterNotFoundError);
    const otherDefault = await otherClient.clusters().find();
    expect(otherDefault.id).not.toBe(defaultCluster.id);
    expect((await otherClient.clusters().all()).map((c) => c.slug)).toEqual([otherDefault.slug]);
  });

  it("runs MultiCluster across two clusters: the other cluster's subtask stays queued until a runner joins there", async () => {
    const testing = await client.clusters().create("testing");
    const other = await client.clusters().create("other-cluster");
    // The runner on "testing" knows DummyTask too, yet must never take the other cluster's task.
    const runnerA = await run(suiteRunner(suite, { cluster: testing.slug, tasks: [MultiCluster, DummyTask], concurrency: 2 }));

    const job = await client.jobs().submit("my-job", new MultiCluster({ otherCluster: other.slug }), { cluster: testing.slug });
    expect(job.clusterSlug).toBe(testing.slug);

    // The root and the same-cluster subtask finish; the dependant is then ready on the other
    // cluster's queue at the broker, where no runner reads.
    const { subtasks } = await waitUntil("the same-cluster subtask to be computed", async () => {
      const tree = await subtasksOf(job.id);
      const same = tree.subtasks.find((t) => t.clusterSlug === testing.slug);
      return same?.state === TaskState.COMPUTED ? tree : undefined;
    });
    expect(subtasks).toHaveLength(2);
    const otherTask = subtasks.find((t) => t.clusterSlug === other.slug)!;
    expect(otherTask.dependsOn).toEqual([subtasks.find((t) => t.clusterSlug === testing.slug)!.id]);
    const dispatch = dispatchClient(suite);
    await waitUntil("the other cluster's subtask to be enqueued at the broker", async () => {
      const { queues } = await dispatch.getQueueStats({ clusterId: other.id });
      return queues.some((q) => q.identifier?.name === "e2e/DummyTask" && q.length > 0n);
    });
    await waitUntil("the testing runner to be idle", async () => runnerA.state.isIdle());

    const waiting = await client.jobs().find(job.id);
    expect([JobState.RUNNING, JobState.STARTED]).toContain(waiting.state);
    const stillQueued = (await subtasksOf(job.id)).subtasks.find((t) => t.id === otherTask.id)!;
    expect(stillQueued.state).toBe(TaskState.QUEUED);
    expect(stillQueued.runnerId).toBe("");

    // One runner in each cluster: the job completes.
    const runnerB = await run(suiteRunner(suite, { cluster: other.slug, tasks: [DummyTask] }));
    const done = await client.jobs().wait(job.id);
    expect(done.state).toBe(JobState.COMPLETED);

    const tree = await subtasksOf(job.id);
    expect(tree.root.state).toBe(TaskState.COMPUTED);
    expect(tree.root.runnerId).toBe(runnerA.id);
    for (const t of tree.subtasks) expect(t.state).toBe(TaskState.COMPUTED);
    expect(tree.subtasks.find((t) => t.clusterSlug === testing.slug)!.runnerId).toBe(runnerA.id);
    const ranElsewhere = tree.subtasks.find((t) => t.clusterSlug === other.slug)!;
    expect(ranElsewhere.runnerId).toBe(runnerB.id);
    expect(ranElsewhere.display).toBe(`ran on ${other.slug}`);
  });

  it("completes MultiCluster at once with a runner in each cluster from the start", async () => {
    const testing = await client.clusters().create("testing");
    const other = await client.clusters().create("other-cluster");
    await run(suiteRunner(suite, { cluster: testing.slug, tasks: [MultiCluster, DummyTask] }));
    await run(suiteRunner(suite, { cluster: other.slug, tasks: [DummyTask] }));
    const job = await client.jobs().submit("my-job", new MultiCluster({ otherCluster: other.slug }), { cluster: testing.slug });
    expect((await client.jobs().wait(job.id)).state).toBe(JobState.COMPLETED);
    const progress = await client.jobs().progress(job.id);
    expect(progress.tasksByState).toMatchObject({ total: 3, computed: 3, queued: 0 });
  });

  it("keeps a task queued while its cluster has no runner that registered it", async () => {
    const lonely = await client.clusters().create("no capable runner");
    // A runner is connected on the cluster, but serves other tasks only.
    const runner = await run(suiteRunner(suite, { cluster: lonely.slug, tasks: [MultiCluster] }));
    const job = await client.jobs().submit("waits", new DummyTask(), { cluster: lonely.slug });
    const dispatch = dispatchClient(suite);
    await waitUntil("the task to be enqueued at the broker", async () => {
      const { queues } = await dispatch.getQueueStats({ clusterId: lonely.id });
      return queues.some((q) => q.identifier?.name === "e2e/DummyTask" && q.length > 0n);
    });
    expect(runner.state.isIdle()).toBe(true);
    const [task] = await client.jobs().tasks(job.id);
    expect(task!.state).toBe(TaskState.QUEUED);
    expect((await client.jobs().find(job.id)).state).toBe(JobState.SUBMITTED);

    // A capable runner on another cluster does not take it either.
    await run(suiteRunner(suite, { tasks: [DummyTask] }));
    const check = await client.jobs().submit("default cluster", new DummyTask());
    expect((await client.jobs().wait(check.id)).state).toBe(JobState.COMPLETED);
    expect((await client.jobs().tasks(job.id))[0]!.state).toBe(TaskState.QUEUED);

    // Once one joins its cluster, it runs.
    await run(suiteRunner(suite, { cluster: lonely.slug, tasks: [DummyTask] }));
    expect((await client.jobs().wait(job.id)).state).toBe(JobState.COMPLETED);
  });

  it("matches versions: a runner of X v1.3 runs X v1.1 but neither X v2.0 nor X v1.4", async () => {
    const cluster = await client.clusters().create("versions");
    const submit = (version: string) =>
      client.jobs().submit(`versioned ${version}`, rawTask({ name: "e2e/Versioned", version }), { cluster: cluster.slug });
    // The ones it must not take go first, so they are queued before it works on anything.
    const v20 = await submit("v2.0");
    const v14 = await submit("v1.4");
    const dispatch = dispatchClient(suite);
    await waitUntil("v2.0 and v1.4 to be enqueued at the broker", async () => {
      const { queues } = await dispatch.getQueueStats({ clusterId: cluster.id });
      const queued = (version: string) => queues.some((q) => q.identifier?.version === version && q.length > 0n);
      return queued("v2.0") && queued("v1.4");
    });

    const v13 = await run(suiteRunner(suite, { cluster: cluster.slug, tasks: [VersionedV13] }));
    const v11 = await submit("v1.1");
    expect((await client.jobs().wait(v11.id)).state).toBe(JobState.COMPLETED);
    const [ran] = await client.jobs().tasks(v11.id);
    expect(ran).toMatchObject({ state: TaskState.COMPUTED, runnerId: v13.id, display: "v1.3" });
    await waitUntil("the v1.3 runner to be idle", async () => v13.state.isIdle());
    for (const job of [v20, v14]) {
      expect((await client.jobs().find(job.id)).state).toBe(JobState.SUBMITTED);
      expect((await client.jobs().tasks(job.id))[0]!.state).toBe(TaskState.QUEUED);
    }

    // They were waiting, not lost: runners of v1.4 and v2.1 take them.
    const v14Runner = await run(suiteRunner(suite, { cluster: cluster.slug, tasks: [VersionedV14] }));
    const v21Runner = await run(suiteRunner(suite, { cluster: cluster.slug, tasks: [VersionedV21] }));
    expect((await client.jobs().wait(v14.id)).state).toBe(JobState.COMPLETED);
    expect((await client.jobs().wait(v20.id)).state).toBe(JobState.COMPLETED);
    expect((await client.jobs().tasks(v14.id))[0]).toMatchObject({ runnerId: v14Runner.id, display: "v1.4" });
    expect((await client.jobs().tasks(v20.id))[0]).toMatchObject({ runnerId: v21Runner.id, display: "v2.1" });
  });
});
