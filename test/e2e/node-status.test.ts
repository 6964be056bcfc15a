// Worker status as a user sees it: a task that blocks until the test releases it shows in
// `corral node get` (and `node list`) on the node running it while it runs, with its identifier and
// job, and is gone once it completed. The three services run as separate processes.
import { JobState } from "@corral/proto";
import { Task, type Client, type ExecutionContext, type Runner } from "@corral/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { startRunner, suiteClient, suiteRunner, waitUntil } from "../support/clients.js";
import { startSuite, type Suite } from "../support/suite.js";

/** Releases for the Held tasks of this process, by the label of their input. */
const gates = new Map<string, { started: (taskId: string) => void; release: Promise<void> }>();

/** Runs until the test releases its label. */
class Held extends Task<{ label: string }> {
  static override identifier = { name: "e2e/Held", version: "v1.3" };
  override async execute(ctx: ExecutionContext): Promise<void> {
    const gate = gates.get(this.input.label);
    if (!gate) return;
    gate.started(ctx.task.id);
    await gate.release;
  }
}

function gate(label: string) {
  let started!: (taskId: string) => void;
  let release!: () => void;
  const startedP = new Promise<string>((r) => (started = r));
  gates.set(label, { started, release: new Promise<void>((r) => (release = r)) });
  return { started: startedP, release };
}

describe("node status shows the tasks a node runs now", { timeout: 120_000 }, () => {
  let suite: Suite;
  let client: Client;
  let runner: Runner;
  const env = () => ({ CORRAL_URL: suite.registry.url, CORRAL_API_KEY: suite.apiKey });

  beforeAll(async () => {
    suite = await startSuite({ label: "e2e-node-status" });
    client = suiteClient(suite);
    runner = suiteRunner(suite, { tasks: [Held], concurrency: 2, runnerId: "status-runner" });
    await startRunner(runner);
  });
  afterAll(async () => {
    await runner?.stop();
    await suite?.stop();
  });

  it("lists a running task in node get and node list while it runs, and not after", async () => {
    const g = gate("one");
    const job = await client.jobs().submit("held", new Held({ label: "one" }));
    const taskId = await g.started;

    const node = await waitUntil("the node to show its running task", async () => {
      const n = await client.nodes().find("status-runner");
      return n.runningTasks.length > 0 ? n : undefined;
    });
    expect(node.runningTasks).toHaveLength(1);
    expect(node.runningTasks[0]).toMatchObject({ jobId: job.id, attempt: 1, identifier: { name: "e2e/Held", version: "v1.3" } });
    expect(node.runningTasks[0]!.taskId).toBe(taskId);

    const [shown, json, listed] = await Promise.all([
      runCli(["node", "get", "status-runner"], { env: env() }),
      runCli(["node", "get", "status-runner", "--json"], { env: env() }),
      runCli(["node", "list"], { env: env() }),
    ]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`running:\\s+1\\n\\s+${taskId} attempt 1 e2e/Held@v1.3 job ${job.id} since `));
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ id: "status-runner", runningTasks: [{ taskId, jobId: job.id }] });
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout.split("\n").find((l) => l.startsWith("status-runner"))).toContain(taskId);

    g.release();
    await client.jobs().wait(job.id);
    expect((await client.jobs().find(job.id)).state).toBe(JobState.COMPLETED);
    await waitUntil("the node to show the task gone", async () => ((await client.nodes().find("status-runner")).runningTasks.length === 0 ? true : undefined));
    const after = await runCli(["node", "get", "status-runner"], { env: env() });
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout).toMatch(/running:\s+-/);
    expect(after.stdout).not.toContain(taskId);
  });
});
