// The task-broker on a three-master Redis Cluster (REDIS_CLUSTER_NODES): the services run as
// separate processes, SDK runners serve several Corral clusters whose hash-tagged keys land on
// different masters, and fan-out jobs with cross-cluster subtasks and dependencies complete.
// Replica requests (ListSessions), queue statistics, revocation and periodic presence work too.
import { createServiceClient } from "@corral/server-kit";
import { TEST_REDIS_URL } from "@corral/server-kit/testing";
import { DispatchService, JobState } from "@corral/proto";
import { Task, type Client, type ExecutionContext, type Runner } from "@corral/sdk";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSuite, type Suite } from "../support/suite.js";
import { startBalancer, type Balancer } from "./support/h2-balancer.js";
import { startRedisCluster, type TestRedisCluster } from "./support/redis-cluster.js";
import { Fanout, clientOf, executions, fanoutTaskCount, runnerOptions, startRunner } from "./support/workload.js";

/** Served by no runner until the test starts one; must never run (its job gets canceled). */
class Unserved extends Task {
  static override identifier = { name: "scale/Unserved", version: "v1.0" };
  override execute(ctx: ExecutionContext): void {
    executions.set(ctx.task.id, (executions.get(ctx.task.id) ?? 0) + 1);
  }
}

function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
const hold = { started: signal(), aborted: signal() };

/** Runs until its job is canceled (the broker's Cancel aborts its signal). */
class Hold extends Task {
  static override identifier = { name: "scale/Hold", version: "v1.0" };
  override async execute(ctx: ExecutionContext): Promise<void> {
    hold.started.resolve();
    await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
    hold.aborted.resolve();
  }
}

class HoldAndQueue extends Task {
  static override identifier = { name: "scale/HoldAndQueue", version: "v1.0" };
  override execute(ctx: ExecutionContext): void {
    ctx.submitSubtask(new Hold());
    ctx.submitSubtask(new Unserved());
  }
}

async function scanKeys(redis: Redis, match: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", match, "COUNT", 1000);
    out.push(...keys);
    cursor = next;
  } while (cursor !== "0");
  return out;
}

async function waitUntil<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

describe("task-broker on a three-master Redis Cluster", () => {
  let redis: TestRedisCluster;
  let suite: Suite;
  let balancer: Balancer;
  let client: Client;
  const runners: Runner[] = [];
  /** Corral clusters (id, slug) and the master holding each one's hash tag. */
  const clusters: Array<{ id: string; slug: string; master: string }> = [];

  beforeAll(async () => {
    redis = await startRedisCluster({ masters: 3 });
    suite = await startSuite({
      label: "scale-redis-cluster",
      env: { REDIS_CLUSTER_NODES: redis.seeds, CORRAL_PRESENCE_INTERVAL: "1s" },
    });
    balancer = await startBalancer([
      { prefix: "/corral.registry.", backends: [suite.registry.url] },
      { prefix: "/corral.jobs.", backends: [suite.jobs.url] },
      { prefix: "/corral.broker.", backends: [suite.broker.url] },
    ]);
    client = clientOf(balancer.url, suite.apiKey);
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled(runners.map((r) => r.stop()));
    await balancer?.close();
    await suite?.stop();
    await redis?.stop();
  }, 60_000);

  it("runs fan-out jobs on clusters whose keys spread over every master", { timeout: 120_000 }, async () => {
    // Create clusters until their hash tags cover all three masters (each lands on one at random).
    const masters = new Set<string>();
    for (let i = 0; clusters.length < 6 || masters.size < 3; i++) {
      expect(i).toBeLessThan(60);
      const c = await client.clusters().create(`scale-${i}`);
      const master = await redis.masterOf(await redis.keySlot(`{${c.id}}`));
      masters.add(master);
      clusters.push({ id: c.id, slug: c.slug, master });
    }
    expect(masters.size).toBe(3);

    for (const c of clusters) {
      const runner = client.runner(runnerOptions(c.slug, { concurrency: 6 }));
      runners.push(runner);
      await startRunner(runner);
    }

    // One job per cluster; every other leaf runs on the next cluster (another slot, often another master).
    const leaves = 150;
    const chunk = 50;
    const before = executions.size;
    const jobs = await Promise.all(
      clusters.map((c, i) =>
        client.jobs().submit(`fanout-${i}`, new Fanout({ leaves, chunk, other: clusters[(i + 1) % clusters.length]!.slug }), {
          cluster: c.slug,
        }),
      ),
    );
    const done = await Promise.all(jobs.map((j) => client.jobs().wait(j.id)));
    expect(done.map((j) => j.state)).toEqual(jobs.map(() => JobState.COMPLETED));
    expect(executions.size - before).toBe(clusters.length * fanoutTaskCount(leaves, chunk));

    // Every cluster's keys sit on the master its hash tag maps to, and only there.
    const addresses = redis.nodes.map((n) => `${n.host}:${n.port}`);
    for (const c of clusters) {
      for (const address of addresses) {
        const keys = await scanKeys(redis.node(address), `${suite.redisPrefix}corral:{${c.id}}:*`);
        if (address === c.master) expect(keys.length, `keys of ${c.slug} on ${address}`).toBeGreaterThan(0);
        else expect(keys, `keys of ${c.slug} on ${address}`).toEqual([]);
      }
    }
    // Nothing went to the single Redis that REDIS_URL names.
    const single = new Redis(TEST_REDIS_URL);
    try {
      expect(await scanKeys(single, `${suite.redisPrefix}*`)).toEqual([]);
    } finally {
      single.disconnect();
    }
  });

  it("answers ListSessions over Pub/Sub and GetQueueStats from every master", async () => {
    const dispatch = createServiceClient(DispatchService, { baseUrl: suite.broker.url, apiKey: suite.serviceKey, timeoutMs: 5_000 });
    const { sessions } = await dispatch.listSessions({});
    expect(sessions.map((s) => s.runnerId).sort()).toEqual(runners.map((r) => r.id).sort());

    const { queues } = await dispatch.getQueueStats({});
    for (const c of clusters) {
      const mine = queues.filter((q) => q.clusterId === c.id);
      expect(mine.map((q) => q.identifier?.name).sort()).toEqual(["scale/Fanout", "scale/Join", "scale/Leaf"]);
      for (const q of mine) expect({ lag: q.lag, pending: q.pending }).toEqual({ lag: 0n, pending: 0n });
    }
  });

  it("cancels a job: its running task gets Cancel and its queued task is dropped unrun", { timeout: 60_000 }, async () => {
    const target = clusters[0]!;
    const holder = client.runner(runnerOptions(target.slug, { tasks: [HoldAndQueue, Hold] }));
    runners.push(holder);
    await startRunner(holder);
    const job = await client.jobs().submit("hold-and-queue", new HoldAndQueue(), { cluster: target.slug });
    const dispatch = createServiceClient(DispatchService, { baseUrl: suite.broker.url, apiKey: suite.serviceKey, timeoutMs: 5_000 });
    const unservedQueue = async () =>
      (await dispatch.getQueueStats({ clusterId: target.id })).queues.find((q) => q.identifier?.name === "scale/Unserved");
    await hold.started.promise;
    await waitUntil("the unserved task to be queued in Redis", async () => ((await unservedQueue())?.length ?? 0n) === 1n);

    const canceled = await client.jobs().cancel(job.id);
    expect(canceled.state).toBe(JobState.CANCELED);
    // Revoke reaches the broker holding the lease (through the replica bus) and marks the job revoked.
    await hold.aborted.promise;

    const picker = client.runner(runnerOptions(target.slug, { tasks: [Unserved] }));
    runners.push(picker);
    await startRunner(picker);
    // The new runner's dispatch group reads the entry, finds the job revoked and drops it unrun.
    await waitUntil("the revoked entry to be dropped", async () => (await unservedQueue())?.length === 0n);
    const tasks = await client.jobs().tasks(job.id);
    const [root] = tasks;
    const children = await client.jobs().tasks(job.id, { parentId: root!.id });
    expect(children).toHaveLength(2);
    for (const t of children) if (t.identifier?.name === "scale/Unserved") expect(executions.get(t.id)).toBeUndefined();
  });

  it("reports every runner to the registry again while it idles", { timeout: 30_000 }, async () => {
    const runner = runners[0]!;
    const first = await client.nodes().find(runner.id);
    const seen = (n: typeof first) => Number(n.lastSeenTime?.seconds ?? 0n) * 1000 + Math.floor((n.lastSeenTime?.nanos ?? 0) / 1e6);
    await waitUntil("a newer presence report", async () => seen(await client.nodes().find(runner.id)) > seen(first));
  });
});
