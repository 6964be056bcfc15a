// corral/RunScript runs any command a key of the team submits on the runner's host, so it is off
// unless the runner's operator turns it on (SDK allowScripts, `corral runner start --allow-scripts`):
// a default runner fails the task without retrying it, a script sees none of the runner's secrets
// unless told, and a runner running as root refuses scripts without an explicit flag.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JobFailedError, RunScript, ScriptPolicyError, builtinTasks, type Client, type Runner } from "@corral/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, spawnCli } from "../support/cli.js";
import { startRunner, suiteClient, suiteRunner } from "../support/clients.js";
import { startSuite, type Suite } from "../support/suite.js";

const isRoot = process.getuid?.() === 0;
/** A secret in the runner's environment, as a database password is in a deployed runner's. */
const secretUrl = "postgres://corral:runner-db-password-7f3a@db:5432/corral";

describe("RunScript is opt-in per runner", { timeout: 120_000 }, () => {
  let suite: Suite;
  let client: Client;
  const runners: Runner[] = [];
  const dir = mkdtempSync(join(tmpdir(), "corral-scripts-"));
  const cliEnv = () => ({ CORRAL_URL: suite.broker.url, CORRAL_API_KEY: suite.apiKey, DATABASE_URL: secretUrl });

  beforeAll(async () => {
    suite = await startSuite({ label: "sec-scripts" });
    client = suiteClient(suite);
  });
  afterAll(async () => {
    await Promise.all(runners.map((r) => r.stop()));
    await suite?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Submits a script that would leave a marker file and print what it sees of DATABASE_URL. */
  async function submitScript(cluster: string, marker: string) {
    return client.jobs().submit(
      "script",
      new RunScript({ command: "sh", args: ["-c", `touch ${join(dir, marker)}; echo "db=[$DATABASE_URL]"`] }),
      { cluster, maxRetries: 2 },
    );
  }

  /** Waits for a job that must fail and returns its only task. */
  async function failedTask(jobId: string) {
    await expect(client.jobs().wait(jobId)).rejects.toBeInstanceOf(JobFailedError);
    const [task] = await client.jobs().tasks(jobId);
    return task!;
  }

  it("an SDK runner without allowScripts fails the task at once, naming the option, and runs nothing", async () => {
    const cluster = await client.clusters().create("sdk default");
    const runner = suiteRunner(suite, { cluster: cluster.slug, tasks: [...builtinTasks] });
    runners.push(runner);
    await startRunner(runner);
    const task = await failedTask((await submitScript(cluster.slug, "sdk-default")).id);
    expect(task.error).toContain("--allow-scripts");
    expect(task.error).toContain("allowScripts: true");
    // Not retried: another attempt on the same runner cannot succeed.
    expect(task.retryCount).toBe(0);
    expect(existsSync(join(dir, "sdk-default"))).toBe(false);
  });

  it("an SDK runner with allowScripts runs it, without the runner's environment", async () => {
    const cluster = await client.clusters().create("sdk allowed");
    process.env.DATABASE_URL = secretUrl;
    try {
      const runner = suiteRunner(suite, { cluster: cluster.slug, tasks: [...builtinTasks], allowScripts: true, allowScriptsAsRoot: isRoot });
      runners.push(runner);
      await startRunner(runner);
      const job = await submitScript(cluster.slug, "sdk-allowed");
      await client.jobs().wait(job.id);
      const [task] = await client.jobs().tasks(job.id);
      expect(task!.display).toContain("db=[]");
      expect(task!.display).not.toContain("runner-db-password");
      expect(existsSync(join(dir, "sdk-allowed"))).toBe(true);
    } finally {
      delete process.env.DATABASE_URL;
    }
  });

  it.runIf(isRoot)("as root, an SDK runner refuses allowScripts without allowScriptsAsRoot", () => {
    expect(() => suiteRunner(suite, { tasks: [...builtinTasks], allowScripts: true })).toThrow(ScriptPolicyError);
    expect(() => suiteRunner(suite, { tasks: [...builtinTasks], allowScripts: true })).toThrow(/allowScriptsAsRoot/);
  });

  it("corral runner start without --allow-scripts fails RunScript tasks, naming the flag", async () => {
    const cluster = await client.clusters().create("cli default");
    const child = spawnCli(["runner", "start", "--builtins", "--cluster", cluster.slug], { env: cliEnv() });
    try {
      const task = await failedTask((await submitScript(cluster.slug, "cli-default")).id);
      expect(task.error).toContain("--allow-scripts");
      expect(task.retryCount).toBe(0);
      expect(existsSync(join(dir, "cli-default"))).toBe(false);
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("corral runner start --allow-scripts runs them, without the runner's DATABASE_URL unless passed", async () => {
    const cluster = await client.clusters().create("cli allowed");
    const asRoot = isRoot ? ["--allow-scripts-as-root"] : [];
    const child = spawnCli(["runner", "start", "--builtins", "--cluster", cluster.slug, "--allow-scripts", ...asRoot], { env: cliEnv() });
    try {
      const job = await submitScript(cluster.slug, "cli-allowed");
      await client.jobs().wait(job.id);
      const [task] = await client.jobs().tasks(job.id);
      expect(task!.display).toContain("db=[]");
      expect(existsSync(join(dir, "cli-allowed"))).toBe(true);
    } finally {
      child.kill("SIGKILL");
    }
    const passing = spawnCli(
      ["runner", "start", "--builtins", "--cluster", cluster.slug, "--allow-scripts", ...asRoot, "--script-env-pass", "DATABASE_URL"],
      { env: cliEnv() },
    );
    try {
      const job = await submitScript(cluster.slug, "cli-passed");
      await client.jobs().wait(job.id);
      const [task] = await client.jobs().tasks(job.id);
      expect(task!.display).toContain(`db=[${secretUrl}]`);
    } finally {
      passing.kill("SIGKILL");
    }
  });

  it.runIf(isRoot)("as root, corral runner start --allow-scripts without --allow-scripts-as-root stops with a usage error", async () => {
    const res = await runCli(["runner", "start", "--builtins", "--allow-scripts"], { env: cliEnv() });
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toContain("--allow-scripts-as-root");
  });
});
