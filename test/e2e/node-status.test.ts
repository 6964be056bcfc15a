// Worker status as a user sees it: a task that blocks until the test releases it shows in
// `corral node get` (and `node list`) on the node running it while it runs, with its identifier and
// job, and is gone once it completed. The three services run as separate processes.
import { REGISTRY_SCHEMA, type RegistryDatabase } from "@corral/cluster-registry";
import { JobState } from "@corral/proto";
import { createDatabase } from "@corral/server-kit";
import { sql, type Kysely } from "kysely";
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

describe("an idle runner's node stays ONLINE on its broker's word alone", { timeout: 120_000 }, () => {
  let suite: Suite;
  let runner: Runner;
  let db: Kysely<RegistryDatabase>;
  const env = () => ({ CORRAL_URL: suite.registry.url, CORRAL_API_KEY: suite.apiKey });
  const stateShown = async () => {
    const shown = await runCli(["node", "get", "idle-runner", "--json"], { env: env() });
    expect(shown.code, shown.stderr).toBe(0);
    return (JSON.parse(shown.stdout) as { state: string }).state;
  };
  const reportTime = async () =>
    (await db.selectFrom("nodes").select("report_time").where("runner_id", "=", "idle-runner").executeTakeFirstOrThrow()).report_time.getTime();

  beforeAll(async () => {
    suite = await startSuite({ label: "e2e-node-beat", env: { CORRAL_PRESENCE_INTERVAL: "300ms" } });
    db = createDatabase<RegistryDatabase>({ url: suite.database.url, schema: REGISTRY_SCHEMA, max: 1 });
    runner = suiteRunner(suite, { tasks: [Held], concurrency: 1, runnerId: "idle-runner" });
    await startRunner(runner);
  });
  afterAll(async () => {
    await runner?.stop();
    await db?.destroy();
    await suite?.stop();
  });

  it("is kept by the broker process's calls, not by reports of it, and goes OFFLINE once they stop", async () => {
    await waitUntil("the node to be ONLINE", async () => ((await stateShown()) === "NODE_STATE_ONLINE" ? true : undefined));
    // No report of the idle runner is sent again (several refreshes pass); the broker's calls keep it.
    await new Promise((r) => setTimeout(r, 1_000));
    const settled = await reportTime();
    const beatBefore = await db.selectFrom("broker_instances").select(["instance", "last_seen_time"]).execute();
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await reportTime()).toBe(settled);
    const beatAfter = await db.selectFrom("broker_instances").select(["instance", "last_seen_time"]).execute();
    expect(beatAfter).toHaveLength(1);
    expect(beatAfter[0]!.last_seen_time.getTime()).toBeGreaterThan(beatBefore[0]!.last_seen_time.getTime());

    // Its last report is an hour old, past the registry's timeout: still ONLINE on the broker's calls.
    await sql`update nodes set report_time = now() - interval '1 hour' where runner_id = 'idle-runner'`.execute(db);
    expect(await stateShown()).toBe("NODE_STATE_ONLINE");

    // The broker dies without a word: once its calls are as old, the node reads OFFLINE.
    await suite.broker.kill9();
    await sql`update broker_instances set last_seen_time = now() - interval '1 hour'`.execute(db);
    expect(await stateShown()).toBe("NODE_STATE_OFFLINE");
  });
});
