// Why queued work waits, said by the server (issue 24 item 5): GetJob's wait_reasons and each
// queued task's wait_reason name the cluster without an online runner, or the identifier no
// online runner there serves; `corral job get` prints them. Over the three services as processes.
import { JobState, TaskState } from "@corral/proto";
import { Task, type Client, type Runner } from "@corral/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { startRunner, suiteClient, suiteRunner, waitUntil } from "../support/clients.js";
import { startSuite, type Suite } from "../support/suite.js";

/** What the job asks for: my/Leaf v1.2. */
class Leaf extends Task<{ n: number }> {
  static override identifier = { name: "e2e/Leaf", version: "v1.2" };
  override execute(): void {}
}

/** What the runner serves: the same name at an older minor, which cannot take v1.2 tasks. */
class OldLeaf extends Task<{ n: number }> {
  static override identifier = { name: "e2e/Leaf", version: "v1.0" };
  override execute(): void {}
}

describe("why queued work waits", { timeout: 120_000 }, () => {
  let suite: Suite;
  let client: Client;
  const runners: Runner[] = [];

  beforeAll(async () => {
    suite = await startSuite({ label: "e2e-why-waiting" });
    client = suiteClient(suite);
  });
  afterAll(async () => {
    await Promise.all(runners.map((r) => r.stop()));
    await suite?.stop();
  });

  it("names a cluster with no online runner, then the identifier its runners do not serve, and stops once one does", async () => {
    const cluster = await client.clusters().create("leaves");
    const job = await client.jobs().submit("leaf", [new Leaf({ n: 1 }), new Leaf({ n: 2 })], { cluster: cluster.slug });

    const empty = await client.jobs().find(job.id);
    expect(empty.waitReasons.map((r) => ({ tasks: r.tasks, message: r.message, identifier: r.identifier }))).toEqual([
      { tasks: 2, message: `no online runner on cluster ${cluster.slug}`, identifier: undefined },
    ]);
    const [queued] = await client.jobs().tasks(job.id);
    expect(queued!.waitReason).toBe(`no online runner on cluster ${cluster.slug}`);

    const old = suiteRunner(suite, { cluster: cluster.slug, tasks: [OldLeaf] });
    runners.push(old);
    await startRunner(old);
    const unserved = `no online runner on cluster ${cluster.slug} serves e2e/Leaf@v1.2`;
    const found = await waitUntil("the reason to name the identifier", async () => {
      const j = await client.jobs().find(job.id);
      return j.waitReasons[0]?.message === unserved && j;
    });
    expect(found.waitReasons[0]!.identifier).toMatchObject({ name: "e2e/Leaf", version: "v1.2" });
    const [task] = await client.jobs().tasks(job.id);
    expect(task!.state).toBe(TaskState.QUEUED);
    expect(task!.waitReason).toBe(unserved);

    const shown = await runCli(["job", "get", job.id], { env: { CORRAL_URL: suite.jobs.url, CORRAL_API_KEY: suite.apiKey } });
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain(`waiting: ${unserved} (2 queued tasks wait)`);

    const current = suiteRunner(suite, { cluster: cluster.slug, tasks: [Leaf] });
    runners.push(current);
    await startRunner(current);
    const done = await client.jobs().wait(job.id);
    expect(done.state).toBe(JobState.COMPLETED);
    expect((await client.jobs().find(job.id)).waitReasons).toEqual([]);
  });
});
