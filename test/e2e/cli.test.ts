// The `corral` command in its own process (`node packages/cli/bin/corral.js`) against the three
// services as separate processes. With no ingress in front of them, CORRAL_URL names the service
// a command talks to: job-service for `job ...`, the registry for `cluster ...`.
import { Code } from "@connectrpc/connect";
import { JobState } from "@corral/proto";
import { Echo, builtinTasks, type Client, type Runner } from "@corral/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, spawnCli } from "../support/cli.js";
import { startRunner, suiteClient, suiteRunner } from "../support/clients.js";
import { startSuite, type Suite } from "../support/suite.js";

// Each CLI run starts a Node process (about a second, more on a busy machine).
describe("the corral CLI against separate service processes", { timeout: 120_000 }, () => {
  let suite: Suite;
  let client: Client;
  const runners: Runner[] = [];
  const jobsEnv = () => ({ CORRAL_URL: suite.jobs.url, CORRAL_API_KEY: suite.apiKey });
  const registryEnv = () => ({ CORRAL_URL: suite.registry.url, CORRAL_API_KEY: suite.apiKey });

  beforeAll(async () => {
    suite = await startSuite({ label: "e2e-cli" });
    client = suiteClient(suite);
    const runner = suiteRunner(suite, { tasks: [...builtinTasks], concurrency: 4 });
    runners.push(runner);
    await startRunner(runner);
  });
  afterAll(async () => {
    await Promise.all(runners.map((r) => r.stop()));
    await suite?.stop();
  });

  it("job wait exits 0 for a completed job and 1 for a failed one", async () => {
    const ok = await client.jobs().submit("cli ok", new Echo({ message: "hi" }));
    const bad = await client.jobs().submit("cli bad", new Echo({ message: "hi", fail: "boom" }));
    const [okRun, okJson, badRun] = await Promise.all([
      runCli(["job", "wait", ok.id], { env: jobsEnv() }),
      runCli(["job", "wait", ok.id, "--json"], { env: jobsEnv() }),
      runCli(["job", "wait", bad.id], { env: jobsEnv() }),
    ]);
    expect(okRun.code, okRun.stderr).toBe(0);
    expect(okRun.stdout).toContain(ok.id);
    expect(okJson.code, okJson.stderr).toBe(0);
    expect(JSON.parse(okJson.stdout)).toMatchObject({ id: ok.id, state: "JOB_STATE_COMPLETED" });
    expect(badRun.code, badRun.stderr).toBe(1);
    expect((await client.jobs().find(bad.id)).state).toBe(JobState.FAILED);
  });

  it("job wait follows a queued job until a runner completes it", async () => {
    const cluster = await client.clusters().create("cli later");
    const job = await client.jobs().submit("cli later", new Echo({ message: "later" }), { cluster: cluster.slug });
    const waiting = spawnCli(["job", "wait", job.id], { env: jobsEnv() });
    let stderr = "";
    waiting.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => waiting.once("close", (code) => resolve(code)));
    try {
      const runner = suiteRunner(suite, { cluster: cluster.slug, tasks: [Echo] });
      runners.push(runner);
      await startRunner(runner);
      expect(await exited, stderr).toBe(0);
    } finally {
      waiting.kill("SIGKILL");
    }
  });

  it("job wait exits 1 for a canceled job, 3 for an unknown one and 4 for a bad key", async () => {
    const cluster = await client.clusters().create("cli nobody");
    const job = await client.jobs().submit("cli canceled", new Echo({ message: "never" }), { cluster: cluster.slug });
    await client.jobs().cancel(job.id);
    const [canceled, unknown, badKey] = await Promise.all([
      runCli(["job", "wait", job.id], { env: jobsEnv() }),
      runCli(["job", "wait", "01a20000-0000-7000-8000-000000000000"], { env: jobsEnv() }),
      runCli(["job", "wait", job.id], { env: { CORRAL_URL: suite.jobs.url, CORRAL_API_KEY: "corral_nosuchkey00_abcdefghijklmnopqrstuvwxyz" } }),
    ]);
    expect(canceled.code, canceled.stderr).toBe(1);
    expect(unknown.code, unknown.stderr).toBe(3);
    expect(badKey.code, badKey.stderr).toBe(4);
  });

  it("job submit --wait runs tasks given as flags, exiting 0 or 1 with the job", async () => {
    const [ok, bad] = await Promise.all([
      runCli(["job", "submit", "--task", "corral/Echo@v1.0", "--input", '{"message":"from the cli"}', "--wait", "--json"], { env: jobsEnv() }),
      runCli(["job", "submit", "--task", "corral/Echo@v1.0", "--input", '{"message":"x","fail":"boom"}', "--wait"], { env: jobsEnv() }),
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    const done = JSON.parse(ok.stdout) as { id: string; state: string };
    expect(done.state).toBe("JOB_STATE_COMPLETED");
    expect((await client.jobs().tasks(done.id))[0]!.display).toBe("from the cli");
    expect(bad.code, bad.stderr).toBe(1);
  });

  it("cluster list --json lists the team's clusters; deleting the default one is refused", async () => {
    const created = await runCli(["cluster", "create", "from the cli", "--json"], { env: registryEnv() });
    expect(created.code, created.stderr).toBe(0);
    const cluster = JSON.parse(created.stdout) as { slug: string; name: string };
    expect(cluster.slug).toMatch(/^from-the-cli-[0-9A-Za-z]{14}$/);
    const viaSdk = await client.clusters().create("from the sdk");

    const listed = await runCli(["cluster", "list", "--json"], { env: registryEnv() });
    expect(listed.code, listed.stderr).toBe(0);
    const clusters = JSON.parse(listed.stdout) as Array<{ slug: string; name: string; isDefault?: boolean }>;
    expect(clusters.map((c) => c.slug)).toEqual(expect.arrayContaining([cluster.slug, viaSdk.slug]));
    const defaults = clusters.filter((c) => c.isDefault);
    expect(defaults).toHaveLength(1);
    expect(clusters.find((c) => c.slug === viaSdk.slug)?.name).toBe("from the sdk");

    const refused = await runCli(["cluster", "delete", defaults[0]!.slug], { env: registryEnv() });
    expect(refused.code, refused.stderr).toBe(1);
    expect((await client.clusters().find()).slug).toBe(defaults[0]!.slug);
  });

  it("location delete and hardware delete remove what no spec names, and refuse what one does", async () => {
    const location = await client.locations().create({ name: "cli-doomed", provider: "aws" });
    const deleted = await runCli(["location", "delete", location.id, "--json"], { env: registryEnv() });
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(JSON.parse(deleted.stdout)).toEqual({ deleted: location.id });
    await expect(client.locations().find(location.id)).rejects.toMatchObject({ code: Code.NotFound });

    const box = await client.hardware().create({ name: "cli-box", cpuCores: 2, memory: "4 GiB" });
    await client.configurations().create("team/cli-box", { spec: { hardwareId: box.id } });
    const refused = await runCli(["hardware", "delete", box.id], { env: registryEnv() });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("configuration team/cli-box");
    expect((await client.hardware().find(box.id)).name).toBe("cli-box");
  });
});
