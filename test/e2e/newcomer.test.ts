// Issue 24's newcomer journey, as a new user would walk it: `corral dev` in a fresh folder, the
// demo job, an own tasks file run from a project subdirectory that finds the credentials in a
// parent folder, a job on a cluster with no runner explained by `job get`, and a failure
// explained by `job wait`.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createTestDatabase, dropTestRedisPrefix, testRedisPrefix, type TestDatabase } from "@corral/server-kit/testing";
import { afterAll, describe, expect, it } from "vitest";
import { cleanEnv, corralBin, runCli } from "../support/cli.js";
import { freePort, repoRoot } from "../support/processes.js";

describe("a newcomer's first hour", () => {
  const root = mkdtempSync(join(tmpdir(), "corral-newcomer-"));
  const redisPrefix = testRedisPrefix("e2e-newcomer");
  let database: TestDatabase | undefined;
  let dev: ChildProcess | undefined;
  let output = "";

  afterAll(async () => {
    if (dev && dev.exitCode === null && dev.signalCode === null) {
      try {
        process.kill(-dev.pid!, "SIGKILL");
      } catch {
        // gone already
      }
    }
    rmSync(root, { recursive: true, force: true });
    await database?.drop();
    await dropTestRedisPrefix(redisPrefix, process.env.CORRAL_TEST_REDIS_URL);
  });

  it("starts dev, runs the demo, runs an own task from a subdirectory, and is told why work waits and why it failed", { timeout: 240_000 }, async () => {
    database = await createTestDatabase("newcomer");
    const port = await freePort();
    // The test Postgres instead of the embedded one (dev.test.ts covers that): this journey is
    // about what the user sees, not about starting Postgres.
    const env = cleanEnv({
      LOG_LEVEL: "warn",
      DATABASE_URL: database.url,
      CORRAL_REDIS_PREFIX: redisPrefix,
      ...(process.env.CORRAL_TEST_REDIS_URL ? { REDIS_URL: process.env.CORRAL_TEST_REDIS_URL } : {}),
    });
    dev = spawn(process.execPath, [corralBin, "dev", "--port", String(port), "--data-dir", join(root, ".corral")], {
      cwd: root,
      env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    dev.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    dev.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      dev!.once("exit", (code, signal) => resolve({ code, signal })),
    );
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (/Ctrl-C stops everything/.test(output)) {
          dev!.stdout!.off("data", check);
          resolve();
        }
      };
      dev!.stdout!.on("data", check);
      void exited.then(() => reject(new Error(`corral dev exited before serving:\n${output}`)));
    });
    // What to export for a shell or a runner elsewhere.
    expect(output).toMatch(new RegExp(`export CORRAL_URL=http://127\\.0\\.0\\.1:${port} CORRAL_API_KEY=corral_`));
    const cli = (args: string[], cwd: string) => runCli(args, { cwd, env: { LOG_LEVEL: "warn" }, timeoutMs: 120_000 });

    // The demo job, from dev's folder.
    const demo = await cli(["job", "submit", "demo", "--wait"], root);
    expect(demo.code, demo.stderr + output).toBe(0);
    expect(demo.stdout).toContain("completed");

    // An own project with a tasks file, worked on from a subdirectory of dev's folder.
    const project = join(root, "project", "src");
    mkdirSync(project, { recursive: true });
    const sdk = pathToFileURL(join(repoRoot, "packages/sdk/src/index.ts")).href;
    writeFileSync(
      join(project, "leaf.mjs"),
      `import { Task } from ${JSON.stringify(sdk)};
export class Leaf extends Task {
  static identifier = { name: "my/Leaf", version: "v1.0" };
  async execute(ctx) {
    if (this.input?.fail) throw new Error("leaf asked to fail");
    ctx.setDisplay("leaf done");
  }
}
`,
    );
    const created = await cli(["cluster", "create", "leaves", "--json"], project);
    expect(created.code, created.stderr).toBe(0);
    const slug = (JSON.parse(created.stdout) as { slug: string }).slug;

    // No runner on that cluster yet: submit warns, and job get says why the job waits.
    const good = await cli(["job", "submit", "--task", "my/Leaf@v1.0", "--input", "{}", "--cluster", slug, "--json"], project);
    expect(good.code, good.stderr).toBe(0);
    expect(good.stderr).toContain(`no online runner on cluster ${slug}`);
    const goodId = (JSON.parse(good.stdout) as { id: string }).id;
    const why = await cli(["job", "get", goodId], project);
    expect(why.code, why.stderr).toBe(0);
    expect(why.stdout).toContain(`waiting: no online runner on cluster ${slug}`);
    const bad = await cli(["job", "submit", "--task", "my/Leaf@v1.0", "--input", '{"fail":true}', "--cluster", slug, "--json"], project);
    const badId = (JSON.parse(bad.stdout) as { id: string }).id;

    // A runner of the tasks file, started in the subdirectory: it finds the credentials in the
    // parent folder, runs both jobs' tasks and returns once idle.
    const runner = await cli(["runner", "start", "--tasks", "./leaf.mjs", "--cluster", slug, "--until-idle"], project);
    expect(runner.code, runner.stderr + runner.stdout).toBe(0);

    const waitedGood = await cli(["job", "wait", goodId], project);
    expect(waitedGood.code, waitedGood.stderr).toBe(0);
    // The failure, explained: which task, on which attempt, with its error.
    const waitedBad = await cli(["job", "wait", badId], project);
    expect(waitedBad.code).toBe(1);
    expect(waitedBad.stderr).toMatch(/task \S+ \(my\/Leaf@v1\.0\) failed on attempt 1: .*leaf asked to fail/);

    process.kill(-dev.pid!, "SIGINT");
    expect(await exited, output).toEqual({ code: 0, signal: null });
  });
});
