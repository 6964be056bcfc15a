// Task logs end to end over the three services as separate processes (real Postgres, Redis and
// HTTP/2): the lines of each attempt of a retried task in order, `corral job logs --follow`
// showing lines while the task runs, a task writing 100,000 lines keeping the bound with its
// marker, and a runner process killed with kill -9 keeping the lines it sent.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { ListTaskLogsRequestSchema, ListTaskLogsResponseSchema, TaskState, type ListTaskLogsResponse } from "@corral/proto";
import { Task, type Client, type ExecutionContext, type Runner, type TaskLogLine } from "@corral/sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startBalancer, type Balancer } from "../scale/support/h2-balancer.js";
import { runCli, spawnCli } from "../support/cli.js";
import { grpcMethod } from "../support/grpc-js.js";
import { repoRoot } from "../support/processes.js";
import { startRunner, suiteClient, suiteRunner, waitUntil } from "../support/clients.js";
import { startSuite, type Suite } from "../support/suite.js";

/** Logs two lines per attempt and fails until its third attempt. */
class Flaky extends Task<void, string> {
  static override identifier = { name: "logs/Flaky", version: "v1.0" };
  override execute(ctx: ExecutionContext): string {
    ctx.logger.info({ step: 1 }, "attempt %d starts", ctx.task.attempt);
    ctx.logger.warn({ step: 2 }, "attempt %d is about to end", ctx.task.attempt);
    if (ctx.task.attempt < 3) throw new Error(`attempt ${ctx.task.attempt} fails on purpose`);
    return "done";
  }
}

/** The test opens it once it saw the first line. */
let openGate: () => void = () => {};
const gate = () => new Promise<void>((resolve) => (openGate = resolve));

/** Logs, waits for the test's signal, logs again. */
class Gated extends Task<void> {
  static override identifier = { name: "logs/Gated", version: "v1.0" };
  override async execute(ctx: ExecutionContext): Promise<void> {
    const opened = gate();
    ctx.logger.info({ phase: "before" }, "waiting for the signal");
    await opened;
    ctx.logger.info({ phase: "after" }, "got the signal");
  }
}

/** Writes n lines as fast as it can, letting the runner's heartbeats through now and then. */
class Chatty extends Task<{ n: number }> {
  static override identifier = { name: "logs/Chatty", version: "v1.0" };
  override async execute(ctx: ExecutionContext): Promise<void> {
    for (let i = 0; i < this.input.n; i++) {
      ctx.logger.info({ i }, "line %d", i);
      if (i % 10_000 === 9_999) await new Promise((r) => setImmediate(r));
    }
  }
}

/** Attempt 1 (in the runner process the test kills) never ends; a later attempt completes. */
class Crashy extends Task<void> {
  static override identifier = { name: "logs/Crashy", version: "v1.0" };
  override execute(ctx: ExecutionContext): void {
    ctx.logger.info("attempt %d runs here", ctx.task.attempt);
  }
}

const TaskLogClient = grpc.makeGenericClientConstructor(
  { listTaskLogs: grpcMethod("/corral.jobs.v1.TaskLogService/ListTaskLogs", ListTaskLogsRequestSchema, ListTaskLogsResponseSchema) },
  "TaskLogService",
);

describe("task logs over separate service processes", { timeout: 180_000 }, () => {
  let suite: Suite;
  let ingress: Balancer;
  let client: Client;
  let work: string;
  const runners: Runner[] = [];
  const cliEnv = () => ({ CORRAL_URL: ingress.url, CORRAL_API_KEY: suite.apiKey });

  beforeAll(async () => {
    // Short leases: the killed runner's attempt expires soon and runs again elsewhere.
    suite = await startSuite({ label: "e2e-task-logs", env: { CORRAL_LEASE_DURATION: "3s" } });
    ingress = await startBalancer([
      { prefix: "/corral.registry.", backends: [suite.registry.url] },
      { prefix: "/corral.jobs.", backends: [suite.jobs.url] },
      { prefix: "/corral.broker.", backends: [suite.broker.url] },
    ]);
    client = suiteClient(suite);
    work = mkdtempSync(join(tmpdir(), "corral-task-logs-e2e-"));
  });
  afterEach(async () => {
    await Promise.all(runners.splice(0).map((r) => r.stop()));
  });
  afterAll(async () => {
    await ingress?.close();
    await suite?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  async function run(runner: Runner): Promise<Runner> {
    runners.push(runner);
    await startRunner(runner);
    return runner;
  }

  async function collect(jobId: string, options: { task?: string; attempt?: number } = {}): Promise<TaskLogLine[]> {
    const out: TaskLogLine[] = [];
    for await (const l of client.jobs().logs(jobId, options)) out.push(l);
    return out;
  }

  it("keeps the lines of each attempt of a retried task, in order; `corral job logs --json` prints them", async () => {
    const cluster = await client.clusters().create("logs retried");
    await run(suiteRunner(suite, { cluster: cluster.slug, tasks: [Flaky] }));
    const job = await client.jobs().submit("retried", new Flaky(), { cluster: cluster.slug, maxRetries: 2 });
    await client.jobs().wait(job.id);
    const lines = await collect(job.id);
    const byAttempt = (n: number) => lines.filter((l) => l.attempt === n).map((l) => [l.level, l.message]);
    for (const n of [1, 2]) {
      expect(byAttempt(n)).toEqual([
        ["info", `attempt ${n} starts`],
        ["warn", `attempt ${n} is about to end`],
        ["warn", "task failed"],
      ]);
    }
    expect(byAttempt(3)).toEqual([
      ["info", "attempt 3 starts"],
      ["warn", "attempt 3 is about to end"],
    ]);
    // Stored in the order written: every attempt's lines come before the next attempt's.
    expect(lines.map((l) => l.attempt)).toEqual([1, 1, 1, 2, 2, 2, 3, 3]);
    expect(lines[0]!.fields).toEqual({ step: 1 });
    expect(lines[0]!.taskName).toBe("logs/Flaky");
    const failed = lines.find((l) => l.message === "task failed")!;
    expect(JSON.stringify(failed.fields)).toContain("attempt 1 fails on purpose");

    const [task] = await client.jobs().tasks(job.id);
    const second = await collect(job.id, { task: task!.id, attempt: 2 });
    expect(second.map((l) => l.message)).toEqual(["attempt 2 starts", "attempt 2 is about to end", "task failed"]);

    const cli = await runCli(["job", "logs", job.id, "--task", task!.id, "--json"], { env: cliEnv() });
    expect(cli.code, cli.stderr).toBe(0);
    const printed = cli.stdout.trim().split("\n").map((l) => JSON.parse(l) as { attempt: number; level: string; message: string; taskId: string });
    expect(printed.map((p) => [p.attempt, p.message])).toEqual(lines.map((l) => [l.attempt, l.message]));
    expect(printed.every((p) => p.taskId === task!.id)).toBe(true);
    const text = await runCli(["job", "logs", job.id], { env: cliEnv() });
    expect(text.stdout).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z INFO  logs\/Flaky \S+ #1  attempt 1 starts step=1$/m);

    // A plain @grpc/grpc-js client reads the same lines.
    const grpcClient = new TaskLogClient(`127.0.0.1:${suite.jobs.port}`, grpc.credentials.createInsecure());
    try {
      const md = new grpc.Metadata();
      md.set("authorization", `Bearer ${suite.apiKey}`);
      const res = await new Promise<ListTaskLogsResponse>((resolve, reject) =>
        (grpcClient as unknown as {
          listTaskLogs(req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: ListTaskLogsResponse) => void): void;
        }).listTaskLogs(create(ListTaskLogsRequestSchema, { jobId: job.id, taskId: task!.id, attempt: 3 }), md, (e, r) => (e ? reject(e) : resolve(r))),
      );
      expect(res.lines.map((l) => l.line!.message)).toEqual(["attempt 3 starts", "attempt 3 is about to end"]);
    } finally {
      grpcClient.close();
    }
  });

  it("`corral job logs --follow` shows lines while the task runs and ends with the job", async () => {
    const cluster = await client.clusters().create("logs follow");
    await run(suiteRunner(suite, { cluster: cluster.slug, tasks: [Gated] }));
    const job = await client.jobs().submit("followed", new Gated(), { cluster: cluster.slug });
    const follower = spawnCli(["job", "logs", job.id, "--follow"], { env: cliEnv() });
    let out = "";
    const exited = new Promise<number | null>((resolve) => follower.once("close", resolve));
    await new Promise<void>((resolve, reject) => {
      follower.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("waiting for the signal")) resolve();
      });
      void exited.then(() => reject(new Error(`corral job logs --follow ended early: ${out}`)));
    });
    // The line arrived while the task is still running: it waits for the signal.
    const [task] = await client.jobs().tasks(job.id);
    expect(task!.state).toBe(TaskState.RUNNING);
    expect(out).not.toContain("got the signal");
    openGate();
    expect(await exited).toBe(0);
    const printed = out.trim().split("\n");
    expect(printed).toHaveLength(2);
    expect(printed[0]).toMatch(/INFO  logs\/Gated \S+ #1  waiting for the signal phase=before$/);
    expect(printed[1]).toMatch(/INFO  logs\/Gated \S+ #1  got the signal phase=after$/);
  });

  it("keeps the bound for a task writing 100,000 lines: the newest lines and a marker saying how many were dropped", async () => {
    const cluster = await client.clusters().create("logs bound");
    await run(suiteRunner(suite, { cluster: cluster.slug, tasks: [Chatty] }));
    const job = await client.jobs().submit("chatty", new Chatty({ n: 100_000 }), { cluster: cluster.slug });
    await client.jobs().wait(job.id);
    // A task's last lines go just before its result, on a backed-up stream too, and the broker
    // holds the result until they are stored, but only for a moment: on a loaded machine 100,000
    // lines may land after the job ended. The log is read once the newest line is the task's last.
    await waitUntil("the task's last line stored", async () => (await collect(job.id)).at(-1)?.message === "line 99999", 60_000);
    const lines = await collect(job.id);
    // Default bound: 10,000 lines per attempt, the marker included.
    expect(lines).toHaveLength(10_000);
    expect(lines[0]!.droppedCount).toBe(90_001);
    expect(lines[0]!.level).toBe("warn");
    expect(lines[0]!.message).toMatch(/^90001 earlier lines were dropped/);
    expect(lines.slice(1).map((l) => l.message)).toEqual(Array.from({ length: 9_999 }, (_, k) => `line ${90_001 + k}`));
  });

  it("keeps the lines a runner process sent before it was killed with kill -9", async () => {
    const cluster = await client.clusters().create("logs crash");
    const sdk = pathToFileURL(join(repoRoot, "packages/sdk/src/index.ts")).href;
    const module = join(work, "crashy.mjs");
    writeFileSync(
      module,
      `import { Task } from ${JSON.stringify(sdk)};
export class Crashy extends Task {
  static identifier = { name: "logs/Crashy", version: "v1.0" };
  async execute(ctx) {
    for (let i = 0; i < 5; i++) ctx.logger.info({ i }, "before the crash %d", i);
    await new Promise(() => {}); // never ends: the test kills this process
  }
}
`,
    );
    const child = spawnCli(["runner", "start", "--tasks", module, "--cluster", cluster.slug, "--runner-id", "crashy-runner"], { env: cliEnv() });
    const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
    try {
      const job = await client.jobs().submit("crashy", new Crashy(), { cluster: cluster.slug });
      // The lines travel while the task runs: all five are stored before anything ends.
      await waitUntil("the runner's lines", async () => (await collect(job.id)).length === 5, 60_000);
      child.kill("SIGKILL");
      await exited;
      // The lease expires; the next attempt runs on another runner and completes.
      await run(suiteRunner(suite, { cluster: cluster.slug, tasks: [Crashy] }));
      await client.jobs().wait(job.id);
      const lines = await collect(job.id);
      expect(lines.map((l) => [l.attempt, l.message])).toEqual([
        ...Array.from({ length: 5 }, (_, i) => [1, `before the crash ${i}`]),
        [2, "attempt 2 runs here"],
      ]);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
