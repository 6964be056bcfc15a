// The shared job cache and the depth-first preference end to end, through the SDK against the
// three services as processes: a task on one runner puts a value that a dependent task on another
// runner (which reaches only the broker's URL) gets; a job's subtasks run before root tasks queued
// before them.
import { JobState } from "@corral/proto";
import { createSdkLogger, Runner, Task, type Client, type ExecutionContext } from "@corral/sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startRunner, suiteClient, suiteRunner } from "../support/clients.js";
import { startSuite, type Suite } from "../support/suite.js";

class Writer extends Task<{ key: string; value: string }> {
  static override identifier = { name: "e2e/CacheWriter", version: "v1.0" };
  override async execute(ctx: ExecutionContext): Promise<void> {
    await ctx.cache.put(this.input.key, this.input.value);
  }
}

/** Fails unless the key holds the value (so the job's state says what the reader saw). */
class Reader extends Task<{ key: string; value: string }> {
  static override identifier = { name: "e2e/CacheReader", version: "v1.0" };
  override async execute(ctx: ExecutionContext): Promise<string> {
    const seen = await ctx.cache.getText(this.input.key);
    if (seen !== this.input.value) throw new Error(`cache key ${this.input.key} held ${String(seen)}, not ${this.input.value}`);
    return seen;
  }
}

class Pipeline extends Task<{ key: string; value: string }> {
  static override identifier = { name: "e2e/CachePipeline", version: "v1.0" };
  override execute(ctx: ExecutionContext): void {
    const w = ctx.submitSubtask(new Writer(this.input));
    ctx.submitSubtask(new Reader(this.input), { dependsOn: [w] });
  }
}

/** The order tasks ran in on the depth-first runner (one slot). */
const ran: string[] = [];

/** One identifier for the parent, its children and the later roots: one queue, first in first out. */
class Node extends Task<{ label: string; children: number }> {
  static override identifier = { name: "e2e/DepthNode", version: "v1.0" };
  override execute(ctx: ExecutionContext): void {
    ran.push(this.input.label);
    for (let i = 0; i < this.input.children; i++) ctx.submitSubtask(new Node({ label: "child", children: 0 }));
  }
}

describe("job cache and depth first over separate service processes", { timeout: 120_000 }, () => {
  let suite: Suite;
  let client: Client;
  const runners: Runner[] = [];

  beforeAll(async () => {
    suite = await startSuite({ label: "e2e-job-cache" });
    client = suiteClient(suite);
  });
  afterEach(async () => {
    await Promise.all(runners.splice(0).map((r) => r.stop()));
  });
  afterAll(async () => {
    await suite?.stop();
  });

  it("a value one runner puts is what a dependent task on another runner gets, with the default cache", async () => {
    const cluster = await client.clusters().create("cache");
    // Runner A writes; runner B, given only the broker's URL (as runners often are), reads.
    const a = suiteRunner(suite, { cluster: cluster.slug, tasks: [Pipeline, Writer], concurrency: 2 });
    const b = new Runner({
      url: suite.broker.url,
      apiKey: suite.apiKey,
      cluster: cluster.slug,
      tasks: [Reader],
      logger: createSdkLogger("e2e-reader", "error"),
      drainGraceMs: 2_000,
      ackTimeoutMs: 2_000,
    });
    runners.push(a, b);
    await Promise.all([startRunner(a), startRunner(b)]);
    const job = await client.jobs().submit("cache", new Pipeline({ key: "tile/1", value: "rows of tile 1" }), { cluster: cluster.slug });
    const done = await client.jobs().wait(job.id);
    expect(done.state).toBe(JobState.COMPLETED);
    const [root] = await client.jobs().tasks(job.id);
    const tasks = await client.jobs().tasks(job.id, { parentId: root!.id });
    const reader = tasks.find((t) => t.identifier?.name === "e2e/CacheReader")!;
    const writer = tasks.find((t) => t.identifier?.name === "e2e/CacheWriter")!;
    expect(reader.runnerId).toBe(b.id);
    expect(writer.runnerId).toBe(a.id);
  });

  it("runs a job's subtasks before the root tasks queued before them", async () => {
    const cluster = await client.clusters().create("depth");
    ran.length = 0;
    // Everything is queued before the runner starts: the parent's job first, then five later jobs.
    await client.jobs().submit("parent", new Node({ label: "parent", children: 3 }), { cluster: cluster.slug });
    const later = [];
    for (let i = 0; i < 5; i++) later.push(await client.jobs().submit(`later ${i}`, new Node({ label: "later", children: 0 }), { cluster: cluster.slug }));
    const runner = suiteRunner(suite, { cluster: cluster.slug, tasks: [Node], concurrency: 1 });
    runners.push(runner);
    await startRunner(runner);
    for (const j of later) expect((await client.jobs().wait(j.id)).state).toBe(JobState.COMPLETED);
    await waitForLength(ran, 9);
    expect(ran[0]).toBe("parent");
    // First in, first out would run every later root before the children. Depth first: the
    // parent's slot waits for the Ack (its children are queued by then) and the children's band
    // is read first; the starvation turn (every STARVATION_TURN-th read, lowest band first) may
    // let one later root in between.
    expect(ran.lastIndexOf("child")).toBeLessThan(ran.lastIndexOf("later"));
    expect(ran.slice(1, 5).filter((k) => k === "child").length).toBeGreaterThanOrEqual(3);
  });
});

/** Resolves once `list` has `n` entries (the last task's result may be acked before its push is seen here). */
async function waitForLength(list: unknown[], n: number): Promise<void> {
  while (list.length < n) await new Promise((r) => setTimeout(r, 20));
}
