// The seeds' APIs as their users know them, from the CLI (issue 24): Tilebox's `corral job clone`
// onto another cluster, `corral job list` by id range in either direction and `corral job visualize`
// flowing right in the dark theme with the job's name; Kamiwaza's GPU-only hardware entry. Over the
// three services as processes.
import { JobState } from "@corral/proto";
import { Task, type Client, type Runner } from "@corral/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { startRunner, suiteClient, suiteRunner } from "../support/clients.js";
import { startSuite, type Suite } from "../support/suite.js";

class Tile extends Task<{ n: number }> {
  static override identifier = { name: "e2e/Tile", version: "v1.0" };
  override execute(): number {
    return this.input.n * 2;
  }
}

describe("the seeds' APIs from the CLI", { timeout: 180_000 }, () => {
  let suite: Suite;
  let client: Client;
  const runners: Runner[] = [];
  const env = () => ({ CORRAL_URL: suite.jobs.url, CORRAL_API_KEY: suite.apiKey });

  beforeAll(async () => {
    suite = await startSuite({ label: "e2e-clone-query" });
    client = suiteClient(suite);
  });
  afterAll(async () => {
    await Promise.all(runners.map((r) => r.stop()));
    await suite?.stop();
  });

  it("clones a job onto another cluster, lists jobs by id range oldest first, and draws a titled dark graph flowing right", async () => {
    const [first, second] = [await client.clusters().create("tiles a"), await client.clusters().create("tiles b")];
    for (const c of [first, second]) {
      const r = suiteRunner(suite, { cluster: c.slug, tasks: [Tile] });
      runners.push(r);
      await startRunner(r);
    }
    const original = await client.jobs().submit("tiles", new Tile({ n: 21 }), { cluster: first.slug });
    await client.jobs().wait(original.id);

    const cloned = await runCli(["job", "clone", original.id, "--cluster", second.slug, "--json"], { env: env() });
    expect(cloned.code, cloned.stderr).toBe(0);
    const clone = JSON.parse(cloned.stdout) as { id: string; name: string; clusterSlug: string };
    expect(clone.id).not.toBe(original.id);
    expect([clone.name, clone.clusterSlug]).toEqual(["tiles", second.slug]);
    const done = await client.jobs().wait(clone.id);
    expect(done.state).toBe(JobState.COMPLETED);
    expect(await client.jobs().result(clone.id)).toBe(42);
    const [task] = await client.jobs().tasks(clone.id);
    expect(task!.clusterSlug).toBe(second.slug);

    const third = await client.jobs().submit("later", new Tile({ n: 1 }), { cluster: first.slug });
    const listed = await runCli(["job", "list", "--from-id", original.id, "--to-id", third.id, "--order", "asc", "--json"], { env: env() });
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as Array<{ id: string }>).map((j) => j.id)).toEqual([original.id, clone.id]);
    const newest = await runCli(["job", "list", "--from-id", original.id, "--json"], { env: env() });
    expect((JSON.parse(newest.stdout) as Array<{ id: string }>).map((j) => j.id)).toEqual([third.id, clone.id, original.id]);
    const bad = await runCli(["job", "list", "--from-id", third.id, "--to-id", original.id], { env: env() });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/id_to/);

    const drawn = await runCli(["job", "visualize", clone.id, "--direction", "right", "--theme", "dark", "--include-job-name"], { env: env() });
    expect(drawn.code, drawn.stderr).toBe(0);
    expect(drawn.stdout).toContain('title: "tiles"');
    expect(drawn.stdout).toContain("theme: dark");
    expect(drawn.stdout).toContain("flowchart LR");
  });

  it("creates a hardware entry of only a name, a GPU count and a GPU type", async () => {
    const env = { CORRAL_URL: suite.registry.url, CORRAL_API_KEY: suite.apiKey };
    const created = await runCli(["hardware", "create", "h100x8", "--gpu", "8", "--gpu-type", "H100"], { env });
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/gpus:\s+8 H100/);
    expect(created.stdout).toMatch(/cpu cores:\s+-/);
    const listed = await runCli(["hardware", "list", "--json"], { env });
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ name: "h100x8", gpuCount: 8, gpuType: "H100" })]);
  });
});
