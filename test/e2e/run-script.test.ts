// corral/RunScript as a user runs it: `corral runner start --builtins --allow-scripts` in its own
// process against the three services, jobs submitted with the SDK, results read with
// jobs().result(), `corral job result` and `corral job get`: a shell pipeline's output, a failed
// command's exit code and tails, a git environment cloned once for two tasks, and the clear,
// not-retried error of a docker environment on a host without docker or podman.
import { execFileSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { decodeOutput, GitCheckouts, JobFailedError, parseScriptFailure, RunScript, scriptOutputOf, TaskFailedError, type Client } from "@corral/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, spawnCli } from "../support/cli.js";
import { suiteClient } from "../support/clients.js";
import { startSuite, type Suite } from "../support/suite.js";

const isRoot = process.getuid?.() === 0;
const root = mkdtempSync(join(tmpdir(), "corral-e2e-runscript-"));

/**
 * This machine's PATH without docker and podman: a folder that holds either is replaced by a copy
 * of its other programs (symlinks), so the runner finds every tool but no container engine.
 */
function pathWithoutContainerEngines(): string {
  const dirs = (process.env.PATH ?? "").split(delimiter).filter((d) => d !== "");
  return dirs
    .map((dir, i) => {
      let entries: string[];
      try {
        entries = readdirSync(dir);
      } catch {
        return dir;
      }
      if (!entries.includes("docker") && !entries.includes("podman")) return dir;
      const mirror = join(root, `path-${i}`);
      mkdirSync(mirror);
      for (const name of entries) {
        if (name === "docker" || name === "podman") continue;
        try {
          if (statSync(join(dir, name)).isFile()) symlinkSync(join(dir, name), join(mirror, name));
        } catch {
          // A dangling link: not a program.
        }
      }
      return mirror;
    })
    .join(delimiter);
}

/** A bare repository whose `main` has a `tools/` folder with a script; answers its file:// URL and commit. */
function bareRepository(): { url: string; commit: string } {
  const env = { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.com", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.com" };
  const git = (cwd: string, ...args: string[]) => execFileSync("git", args, { cwd, env, encoding: "utf8" }).trim();
  const bare = join(root, "tools.git");
  const work = join(root, "tools-work");
  git(root, "init", "--quiet", "--bare", bare);
  git(root, "init", "--quiet", "--initial-branch=main", work);
  mkdirSync(join(work, "tools"));
  writeFileSync(join(work, "tools", "greet.sh"), 'echo "hello $1 from $(basename "$PWD")"\n');
  git(work, "add", "-A");
  git(work, "commit", "--quiet", "-m", "tools");
  git(work, "push", "--quiet", bare, "main:main");
  return { url: `file://${bare}`, commit: git(work, "rev-parse", "HEAD") };
}

describe("RunScript on a runner started with --allow-scripts", { timeout: 180_000 }, () => {
  let suite: Suite;
  let client: Client;
  let runner: ChildProcess | undefined;
  let cluster: string;
  const cacheDir = join(root, "script-cache");
  const cliEnv = () => ({ CORRAL_URL: suite.jobs.url, CORRAL_API_KEY: suite.apiKey });

  beforeAll(async () => {
    suite = await startSuite({ label: "e2e-runscript" });
    client = suiteClient(suite);
    cluster = (await client.clusters().create("scripts")).slug;
    runner = spawnCli(
      [
        "runner",
        "start",
        "--builtins",
        "--cluster",
        cluster,
        "--concurrency",
        "2",
        "--allow-scripts",
        ...(isRoot ? ["--allow-scripts-as-root"] : []),
        "--script-cache-dir",
        cacheDir,
      ],
      { env: { CORRAL_URL: suite.broker.url, CORRAL_API_KEY: suite.apiKey, PATH: pathWithoutContainerEngines() } },
    );
  });
  afterAll(async () => {
    runner?.kill("SIGKILL");
    await suite?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it("returns a shell pipeline's exit code and output tails, to the SDK and to corral job result", async () => {
    const job = await client.jobs().submit("pipeline", new RunScript({ command: "printf 'b\\na\\nc\\n' | sort | head -n 2; echo careful >&2" }), { cluster });
    const expected = { exitCode: 0, stdoutTail: "a\nb\n", stderrTail: "careful\n" };
    expect(await client.jobs().result(job.id)).toEqual(expected);
    const printed = await runCli(["job", "result", job.id, "--json"], { env: cliEnv() });
    expect(printed.code, printed.stderr).toBe(0);
    expect(JSON.parse(printed.stdout)).toEqual(expected);
    // argv with args: no shell, so nothing is expanded.
    expect(await client.jobs().run("argv", new RunScript({ command: "echo", args: ["$HOME", "*"] }), { cluster })).toEqual({
      exitCode: 0,
      stdoutTail: "$HOME *\n",
      stderrTail: "",
    });
  });

  it("fails a command that exits non-zero with its exit code and stderr, shown by result(), job result and job get", async () => {
    const job = await client.jobs().submit("broken", new RunScript({ command: "echo 'step 1 ok'; echo 'disk full' >&2; exit 4" }), { cluster });
    const err = await client.jobs().result(job.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskFailedError);
    const failed = err as TaskFailedError;
    expect(failed.message).toContain("corral/RunScript: exit code 4");
    expect(parseScriptFailure(failed.error)).toEqual({ exitCode: 4, stdoutTail: "step 1 ok\n", stderrTail: "disk full\n" });

    const result = await runCli(["job", "result", job.id], { env: cliEnv() });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`task ${failed.taskId} attempt 1:\n  exit code 4\n  stderr:\n    | disk full\n  stdout:\n    | step 1 ok\n`);
    expect(result.stderr).toContain("error: job");

    const get = await runCli(["job", "get", job.id, "--tasks"], { env: cliEnv() });
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toContain("ScriptFailedError: corral/RunScript: exit code 4"); // the task table's WHY
    expect(get.stdout).toContain(`task ${failed.taskId} (corral/RunScript@v1.0) failed on attempt 1: ScriptFailedError: corral/RunScript: exit code 4`);
    expect(get.stdout).toContain("  exit code 4\n  stderr:\n    | disk full\n");
  });

  it("keeps a failed command's exit code and whole tails as the attempt's output: GetTask, result() and job result --task", async () => {
    // 3000 bytes of stdout: the error text quotes its last 2048 chars, the output keeps the 4096-byte tail.
    const command = "head -c 3000 /dev/zero | tr '\\0' o; echo 'no space left' >&2; exit 7";
    const job = await client.jobs().submit("broken-output", new RunScript({ command }), { cluster });
    const expected = { exitCode: 7, stdoutTail: "o".repeat(3000), stderrTail: "no space left\n" };
    const err = await client.jobs().result(job.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskFailedError);
    const failed = err as TaskFailedError;
    expect(failed.output).toEqual(expected);
    expect(scriptOutputOf(failed.output)).toEqual(expected);
    // The error text is as before (its stdout quote bounded), the output carries the whole tail.
    expect(parseScriptFailure(failed.error)?.stdoutTail).toBe("o".repeat(2048));

    const task = await client.jobs().task(job.id, failed.taskId);
    expect(task.outputAttempt).toBe(1);
    expect(decodeOutput(task.output)).toEqual(expected);

    const byTask = await runCli(["job", "result", job.id, "--task", failed.taskId, "--json"], { env: cliEnv() });
    expect(byTask.code, byTask.stderr).toBe(0);
    expect(JSON.parse(byTask.stdout)).toEqual(expected);
  });

  it("runs two tasks in a git checkout's working dir, cloned once", async () => {
    const repo = bareRepository();
    const task = (who: string) =>
      new RunScript({ command: "sh", args: ["greet.sh", who], environment: { git: { url: repo.url, branch: "main", workdir: "tools" } } });
    const job = await client.jobs().submit("git", [task("ann"), task("bob")], { cluster });
    await client.jobs().wait(job.id);
    const tasks = await client.jobs().tasks(job.id, { includeOutput: true });
    const { decodeOutput } = await import("@corral/sdk");
    expect(tasks.map((t) => decodeOutput(t.output)).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual([
      { exitCode: 0, stdoutTail: "hello ann from tools\n", stderrTail: "", commit: repo.commit },
      { exitCode: 0, stdoutTail: "hello bob from tools\n", stderrTail: "", commit: repo.commit },
    ]);
    // One clone of that commit in the runner's script cache: its folder and the link to it.
    const entries = readdirSync(new GitCheckouts(cacheDir).repositoryDir(repo.url)).sort();
    expect(entries).toHaveLength(2);
    expect(entries[0]).toBe(repo.commit);
    expect(entries[1]).toMatch(new RegExp(`^${repo.commit}\\.d-[0-9a-f]+$`));
  });

  it("corral runner start --help lists the built-in tasks' inputs and the script cache", async () => {
    const help = await runCli(["runner", "start", "--help"]);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toContain("--script-cache-dir <dir>");
    expect(help.stdout).toContain("corral/Echo@v1.0       { message, delay?: seconds, delayMs?, fail? }  returns { echoed }");
    expect(help.stdout).toContain('corral/RunScript@v1.0  { command: "a shell line" | ["program", "arg", ...],');
    expect(help.stdout).toContain("environment?: { git: { url, branch? | ref?, workdir? } }");
    expect(help.stdout).toContain("returns { exitCode, stdoutTail, stderrTail }");
    const without = await runCli(["runner", "start", "--builtins", "--script-cache-dir", cacheDir], { env: cliEnv() });
    expect(without.code).toBe(2);
    expect(without.stderr).toContain("--script-cache-dir need --allow-scripts");
  });

  it("fails a docker environment at once, not retried, on a runner without docker or podman", async () => {
    const job = await client.jobs().submit("container", new RunScript({ command: "python -V", environment: { docker: { image: "python:3.12" } } }), {
      cluster,
      maxRetries: 3,
    });
    await expect(client.jobs().wait(job.id)).rejects.toBeInstanceOf(JobFailedError);
    const [task] = await client.jobs().tasks(job.id);
    expect(task!.error).toContain("corral/RunScript environment.docker needs the docker or podman CLI on this runner's PATH");
    expect(task!.retryCount).toBe(0);
    expect(task!.attempt).toBe(1);
  });
});
