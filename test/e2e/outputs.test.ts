// Task outputs over the three services as separate processes: a three-level job whose tasks read
// their dependencies' outputs, jobs().run() returning the root's output, `corral job result`
// printing it, an output over the limit failing its task (and nothing else), and corral/Echo
// answering Mindtrace's EchoWorker input with its output.
import {
  Echo,
  Task,
  TaskFailedError,
  type Client,
  type ExecutionContext,
  type Runner,
} from "@corral/sdk";
import { TaskState } from "@corral/proto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { startRunner, suiteClient, suiteRunner } from "../support/clients.js";
import { startSuite, type Suite } from "../support/suite.js";

/** Level 3: returns n squared. */
class Square extends Task<{ n: number }, number> {
  static override identifier = { name: "outputs/Square", version: "v1.0" };
  override execute(): number {
    return this.input.n * this.input.n;
  }
}

/** Level 3: sums the outputs of its dependencies (the squares). */
class SumSquares extends Task<void, { sum: number; parts: number[] }> {
  static override identifier = { name: "outputs/SumSquares", version: "v1.0" };
  override execute(ctx: ExecutionContext) {
    const parts = ctx.dependencyOutputs().map((d) => d.output as number);
    return { sum: parts.reduce((a, b) => a + b, 0), parts };
  }
}

/** Level 2: fans out squares and a sum depending on them; returns how many it made. */
class Plan extends Task<{ upTo: number }, { squares: number }> {
  static override identifier = { name: "outputs/Plan", version: "v1.0" };
  override execute(ctx: ExecutionContext) {
    const squares = [];
    for (let n = 1; n <= this.input.upTo; n++) squares.push(ctx.submitSubtask(new Square({ n })));
    const sum = ctx.submitSubtask(new SumSquares(), { dependsOn: squares });
    ctx.submitSubtask(new Report(), { dependsOn: sum });
    return { squares: squares.length };
  }
}

/** Level 3: reads its dependency's output typed from the class and records it. */
class Report extends Task<void, string> {
  static override identifier = { name: "outputs/Report", version: "v1.0" };
  override execute(ctx: ExecutionContext): string {
    const { sum } = ctx.outputOf(SumSquares);
    return `sum of squares: ${sum}`;
  }
}

/** Level 1: the root; plans and returns a label (the job's result). */
class Root extends Task<{ upTo: number }, { label: string }> {
  static override identifier = { name: "outputs/Root", version: "v1.0" };
  override execute(ctx: ExecutionContext) {
    ctx.submitSubtask(new Plan({ upTo: this.input.upTo }));
    return { label: `squares up to ${this.input.upTo}` };
  }
}

/** Returns `size` bytes: over the limit when size is. */
class Blob extends Task<{ size: number }, Uint8Array> {
  static override identifier = { name: "outputs/Blob", version: "v1.0" };
  override execute(): Uint8Array {
    return new Uint8Array(this.input.size).fill(7);
  }
}

/** Root of a job with a small and a huge Blob (the huge one optional, so the job still ends). */
class TwoBlobs extends Task<{ small: number; huge: number }> {
  static override identifier = { name: "outputs/TwoBlobs", version: "v1.0" };
  override execute(ctx: ExecutionContext): void {
    ctx.submitSubtask(new Blob({ size: this.input.small }));
    ctx.submitSubtask(new Blob({ size: this.input.huge }), { optional: true });
  }
}

const limit = 64 * 1024;

describe("task outputs over separate service processes", { timeout: 120_000 }, () => {
  let suite: Suite;
  let client: Client;
  const runners: Runner[] = [];

  beforeAll(async () => {
    suite = await startSuite({ label: "e2e-outputs", env: { CORRAL_MAX_OUTPUT_BYTES: String(limit) } });
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

  it("runs a three-level job whose tasks read their dependencies' outputs; run() returns the root's output", async () => {
    const cluster = await client.clusters().create("outputs three levels");
    await run(suiteRunner(suite, { cluster: cluster.slug, tasks: [Root, Plan, Square, SumSquares, Report], concurrency: 4 }));
    const job = await client.jobs().submit("squares", new Root({ upTo: 4 }), { cluster: cluster.slug });
    expect(await client.jobs().result(job.id)).toEqual({ label: "squares up to 4" });

    const [root] = await client.jobs().tasks(job.id);
    const [plan] = await client.jobs().tasks(job.id, { parentId: root!.id });
    const leaves = await client.jobs().tasks(job.id, { parentId: plan!.id, includeOutput: true });
    const byName = (name: string) => leaves.filter((t) => t.identifier?.name === name);
    const { decodeOutput } = await import("@corral/sdk");
    expect(byName("outputs/Square").map((t) => decodeOutput(t.output))).toEqual([1, 4, 9, 16]);
    expect(decodeOutput(byName("outputs/SumSquares")[0]!.output)).toEqual({ sum: 30, parts: [1, 4, 9, 16] });
    const report = await client.jobs().task(job.id, byName("outputs/Report")[0]!.id);
    expect(decodeOutput(report.output)).toBe("sum of squares: 30");
    expect(report.outputAttempt).toBe(report.attempt);

    // Typed from Task<Input, Output>: `typed` is { label: string }.
    const typed = await client.jobs().run("squares again", new Root({ upTo: 2 }), { cluster: cluster.slug });
    expect(typed.label).toBe("squares up to 2");

    const printed = await runCli(["job", "result", job.id], { env: { CORRAL_URL: suite.jobs.url, CORRAL_API_KEY: suite.apiKey } });
    expect(printed.stderr).toBe("");
    expect(JSON.parse(printed.stdout)).toEqual({ label: "squares up to 4" });
    const one = await runCli(["job", "result", job.id, "--task", report.id, "--json"], {
      env: { CORRAL_URL: suite.jobs.url, CORRAL_API_KEY: suite.apiKey },
    });
    expect(JSON.parse(one.stdout)).toBe("sum of squares: 30");
  });

  it("fails a task whose output is over the limit, naming the limit, and changes nothing else", async () => {
    const cluster = await client.clusters().create("outputs limit");
    // The runner's own check would refuse it first: give it a higher limit so job-service enforces.
    const runner = suiteRunner(suite, { cluster: cluster.slug, tasks: [TwoBlobs, Blob], concurrency: 2 });
    process.env.CORRAL_MAX_OUTPUT_BYTES = String(limit * 4);
    try {
      await run(runner);
      const job = await client.jobs().submit("blobs", new TwoBlobs({ small: 1000, huge: limit + 1 }), { cluster: cluster.slug });
      await client.jobs().wait(job.id);
      const [root] = await client.jobs().tasks(job.id);
      const blobs = await client.jobs().tasks(job.id, { parentId: root!.id, includeOutput: true });
      const small = blobs.find((t) => t.state === TaskState.COMPUTED)!;
      const huge = blobs.find((t) => t.state === TaskState.FAILED_OPTIONAL)!;
      expect(new Uint8Array(small.output!.data)).toEqual(new Uint8Array(1000).fill(7));
      expect(huge.error).toContain(`over the limit of ${limit} bytes (CORRAL_MAX_OUTPUT_BYTES)`);
      expect(huge.output).toBeUndefined();
      expect(huge.attempt).toBe(1);
    } finally {
      delete process.env.CORRAL_MAX_OUTPUT_BYTES;
    }
    // The runner checks before sending, with the same words.
    await run(suiteRunner(suite, { cluster: cluster.slug, tasks: [Blob], concurrency: 1 }));
    const job = await client.jobs().submit("blob", new Blob({ size: limit * 2 }), { cluster: cluster.slug });
    const err = await client.jobs().result(job.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskFailedError);
    expect((err as TaskFailedError).attempt).toBe(1);
    expect((err as TaskFailedError).error).toContain("(CORRAL_MAX_OUTPUT_BYTES)");
  });

  it("answers Mindtrace's EchoWorker input with Mindtrace's output", async () => {
    const cluster = await client.clusters().create("outputs echo");
    await run(suiteRunner(suite, { cluster: cluster.slug, tasks: [Echo], concurrency: 1 }));
    const mindtraceInput = { message: "Hello World", delay: 0.01 };
    const out = await client.jobs().run("echo", new Echo(mindtraceInput), { cluster: cluster.slug });
    expect(out).toEqual({ echoed: "Hello World" });
    expect(await client.jobs().run("echo ms", new Echo({ message: "hi", delayMs: 1 }), { cluster: cluster.slug })).toEqual({ echoed: "hi" });
  });
});
