// corral/RunScript with real processes and real git: shell strings and argv, output tails, failures,
// and git environments from a bare repository on disk (file:// URL), cloned once per commit.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, lutimesSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createJobCache, InMemoryCache } from "../cache.js";
import { UnrecoverableTaskError } from "../errors.js";
import { ExecutionContext } from "../execution-context.js";
import { createSdkLogger } from "../logger.js";
import { GitCheckouts, GitEnvironmentError, gitCheckouts, gitEnv } from "./git-checkouts.js";
import { findOnPath } from "./run-command.js";
import { RunScript, type RunScriptInput } from "./run-script.js";
import { decodeOutput, DEFAULT_MAX_OUTPUT_BYTES, encodeOutput, failureOutputOf } from "../task-output.js";
import { parseScriptFailure, ScriptFailedError, scriptOutputOf } from "./script-failure.js";
import { resolveScriptPolicy } from "./script-policy.js";

const root = mkdtempSync(join(tmpdir(), "corral-runscript-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let tasks = 0;
/** Runs a RunScript task as a runner with --allow-scripts and this script cache would. */
function run(input: RunScriptInput, cacheDir = join(root, "cache")) {
  const scripts = resolveScriptPolicy({ allowScripts: true, allowScriptsAsRoot: true, scriptCacheDir: cacheDir });
  const ctx = new ExecutionContext({
    job: { id: "job", name: "test" },
    task: { id: `task-${++tasks}`, attempt: 1, display: "", parentId: "", clusterSlug: "", retryCount: 0, maxRetries: 0 },
    signal: new AbortController().signal,
    logger: createSdkLogger("test", "silent"),
    cache: createJobCache(new InMemoryCache(), "job"),
    scripts,
  });
  return new RunScript(input).execute(ctx);
}

const gitIdentity = { GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.com", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.com" };
function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", args, { cwd, env: { ...process.env, ...gitIdentity }, encoding: "utf8" }).trim();
}

/** A bare repository with a branch per entry, each commit holding these files; answers its file:// URL and commits. */
function bareRepository(name: string, branches: Record<string, Record<string, string>>): { url: string; commits: Record<string, string> } {
  const bare = join(root, `${name}.git`);
  const work = join(root, `${name}-work`);
  git(root, "init", "--quiet", "--bare", bare);
  git(root, "init", "--quiet", work);
  const commits: Record<string, string> = {};
  for (const [branch, files] of Object.entries(branches)) {
    git(work, "checkout", "--quiet", "--orphan", branch);
    git(work, "rm", "-r", "--quiet", "--cached", "--ignore-unmatch", ".");
    for (const entry of readdirSync(work)) if (entry !== ".git") rmSync(join(work, entry), { recursive: true, force: true });
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(join(work, path, ".."), { recursive: true });
      writeFileSync(join(work, path), content);
    }
    git(work, "add", "-A");
    git(work, "commit", "--quiet", "-m", branch);
    git(work, "push", "--quiet", bare, `${branch}:${branch}`);
    commits[branch] = git(work, "rev-parse", "HEAD");
  }
  return { url: `file://${bare}`, commits };
}

describe("corral/RunScript commands", { timeout: 60_000 }, () => {
  it("runs a shell pipeline from a command string", async () => {
    const out = await run({ command: "printf 'b\\na\\nc\\n' | sort | head -n 2; echo to-err >&2" });
    expect(out).toEqual({ exitCode: 0, stdoutTail: "a\nb\n", stderrTail: "to-err\n" });
  });

  it("runs argv with args without a shell", async () => {
    const out = await run({ command: "printf", args: ["[%s]", "a b", "$HOME", "*"] });
    expect(out.stdoutTail).toBe("[a b][$HOME][*]");
    expect((await run({ command: ["printf", "%s-", "x", "y"] })).stdoutTail).toBe("x-y-");
  });

  it("keeps only the last tailBytes of stdout and of stderr", async () => {
    const out = await run({ command: "seq 1 20000; seq 1 5000 >&2", tailBytes: 100 });
    expect(Buffer.byteLength(out.stdoutTail)).toBeLessThanOrEqual(100);
    expect(out.stdoutTail.endsWith("19999\n20000\n")).toBe(true);
    expect(out.stderrTail.endsWith("4999\n5000\n")).toBe(true);
  });

  it("fails on a non-zero exit with the exit code and the end of stderr, retryable", async () => {
    const err = await run({ command: "echo partial; echo 'it broke' >&2; exit 7" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ScriptFailedError);
    expect(err).not.toBeInstanceOf(UnrecoverableTaskError);
    const failed = err as ScriptFailedError;
    expect(failed.exitCode).toBe(7);
    expect(failed.message.split("\n")[0]).toBe("corral/RunScript: exit code 7: echo partial; echo 'it broke' >&2; exit 7");
    expect(parseScriptFailure(failed.stack!)).toEqual({ exitCode: 7, stdoutTail: "partial\n", stderrTail: "it broke\n" });
    // The failed attempt's output, as the runner encodes it for job-service.
    const output = encodeOutput(failureOutputOf(err), DEFAULT_MAX_OUTPUT_BYTES);
    expect(scriptOutputOf(decodeOutput(output))).toEqual({ exitCode: 7, stdoutTail: "partial\n", stderrTail: "it broke\n" });
    expect(failureOutputOf(new Error("plain"))).toBeUndefined();
  });

  it("with allowFailure returns a non-zero exit as its output", async () => {
    expect(await run({ command: "echo nope >&2; exit 2", allowFailure: true })).toEqual({ exitCode: 2, stdoutTail: "", stderrTail: "nope\n" });
  });

  it("fails, not to be retried, on input it cannot run, naming the field", async () => {
    const err = await run({ command: "ls", environment: { git: { url: "--upload-pack=touch /tmp/pwned" } } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnrecoverableTaskError);
    expect((err as Error).message).toBe("corral/RunScript input.environment.git.url: must not start with '-'");
    const missing = await run({ command: "no-such-program-here", args: [] }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(UnrecoverableTaskError);
    expect((missing as Error).message).toContain('cannot start "no-such-program-here"');
  });
});

describe("corral/RunScript git environment", { timeout: 120_000 }, () => {
  const repo = bareRepository("app", {
    main: { "README.md": "main\n" },
    feature: { "README.md": "feature\n", "sub/dir/hello.txt": "hello from feature\n" },
  });

  it("checks out the branch, runs in the working dir, and clones once for two tasks", async () => {
    const cacheDir = join(root, "cache-git");
    const checkouts = gitCheckouts(cacheDir);
    const input: RunScriptInput = {
      command: 'cat hello.txt; basename "$PWD"; echo "$CORRAL_GIT_COMMIT"',
      environment: { git: { url: repo.url, branch: "feature", workdir: "sub/dir" } },
    };
    // Two tasks at once for the same commit: one clone, shared.
    const [a, b] = await Promise.all([run(input, cacheDir), run(input, cacheDir)]);
    for (const out of [a, b]) {
      expect(out.stdoutTail).toBe(`hello from feature\ndir\n${repo.commits.feature}\n`);
      expect(out.commit).toBe(repo.commits.feature);
    }
    expect(checkouts.clones).toBe(1);
    // A later task of that commit uses the cached checkout too.
    await run(input, cacheDir);
    expect(checkouts.clones).toBe(1);
    // On disk: one checkout folder of that commit and the link that makes it visible, nothing else.
    const repoDir = checkouts.repositoryDir(repo.url);
    expect(readdirSync(repoDir).sort()).toEqual([repo.commits.feature, readlinkSync(join(repoDir, repo.commits.feature))].sort());
    // Another branch is another commit: its own clone.
    const main = await run({ command: "cat README.md", environment: { git: { url: repo.url, branch: "main" } } }, cacheDir);
    expect(main.stdoutTail).toBe("main\n");
    expect(checkouts.clones).toBe(2);
    // A commit by its hash: already cached.
    const byRef = await run({ command: "cat README.md", environment: { git: { url: repo.url, ref: repo.commits.feature } } }, cacheDir);
    expect(byRef.stdoutTail).toBe("feature\n");
    expect(checkouts.clones).toBe(2);
  });

  it("refuses a working dir or branch the repository does not have, not to be retried", async () => {
    const cacheDir = join(root, "cache-missing");
    const noDir = await run({ command: "true", environment: { git: { url: repo.url, branch: "main", workdir: "sub/dir" } } }, cacheDir).catch((e: unknown) => e);
    expect(noDir).toBeInstanceOf(UnrecoverableTaskError);
    expect((noDir as Error).message).toBe(`corral/RunScript input.environment.git.workdir: "sub/dir" is not a folder of ${repo.url} at ${repo.commits.main}`);
    const noBranch = await run({ command: "true", environment: { git: { url: repo.url, branch: "nope" } } }, cacheDir).catch((e: unknown) => e);
    expect(noBranch).toBeInstanceOf(UnrecoverableTaskError);
    expect((noBranch as Error).message).toBe(`corral/RunScript environment.git: ${repo.url} has no branch "nope"`);
  });

  it("fails a repository it cannot reach as a retryable failure, without the URL's password", async () => {
    const url = "https://someone:s3cret-token@127.0.0.1:1/app.git";
    const err = await run({ command: "true", environment: { git: { url, branch: "main" } } }, join(root, "cache-unreachable")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GitEnvironmentError);
    expect((err as Error).message).toContain("corral/RunScript environment.git: git ls-remote failed");
    expect((err as Error).message).not.toContain("s3cret-token");
  });

  it("does not use what a crashed clone left, and takes over its lock", async () => {
    const cacheDir = join(root, "cache-crash");
    const checkouts = gitCheckouts(cacheDir);
    const repoDir = checkouts.repositoryDir(repo.url);
    const commit = repo.commits.feature!;
    // A runner died mid-clone: a half folder and its lock, held by a pid that is gone.
    mkdirSync(join(repoDir, `${commit}.d-deadbeef0000`, "sub"), { recursive: true });
    const gone = spawnSync("true").pid!;
    writeFileSync(join(repoDir, `${commit}.lock`), `${gone}\n`);
    const out = await run({ command: "cat sub/dir/hello.txt", environment: { git: { url: repo.url, branch: "feature" } } }, cacheDir);
    expect(out.stdoutTail).toBe("hello from feature\n");
    expect(checkouts.clones).toBe(1);
    expect(existsSync(join(repoDir, `${commit}.d-deadbeef0000`))).toBe(false);
    expect(existsSync(join(repoDir, `${commit}.lock`))).toBe(false);
  });

  it("lets runner processes sharing a cache folder clone a commit once between them", async () => {
    const cacheDir = join(root, "cache-processes");
    // Each process checks out the same commit with its own GitCheckouts and prints its clone count.
    const script = `
      import { gitCheckouts, gitEnv } from ${JSON.stringify(new URL("./git-checkouts.ts", import.meta.url).href)};
      const c = gitCheckouts(${JSON.stringify(cacheDir)});
      // Loaded: say so, and start when told (all processes at once).
      console.log("ready");
      await new Promise((r) => process.stdin.once("data", r));
      const out = await c.checkout(${JSON.stringify(repo.url)}, { kind: "branch", name: "feature" }, gitEnv({ PATH: process.env.PATH, HOME: process.env.HOME }), new AbortController().signal);
      await out.release();
      console.log(JSON.stringify({ clones: c.clones, dir: out.dir }));`;
    const children = [0, 1, 2].map(() => {
      const p = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["pipe", "pipe", "inherit"] });
      let out = "";
      const ready = new Promise<void>((resolve) => {
        p.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          if (out.startsWith("ready\n")) resolve();
        });
      });
      const done = new Promise<{ clones: number; dir: string }>((resolve, reject) => {
        p.on("error", reject);
        p.on("close", (code) => (code === 0 ? resolve(JSON.parse(out.slice("ready\n".length)) as { clones: number; dir: string }) : reject(new Error(`exit ${code}: ${out}`))));
      });
      return { p, ready, done };
    });
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.p.stdin.end("go\n");
    const results = await Promise.all(children.map((c) => c.done));
    expect(results.reduce((n, r) => n + r.clones, 0)).toBe(1);
    expect(new Set(results.map((r) => r.dir)).size).toBe(1);
    const repoDir = gitCheckouts(cacheDir).repositoryDir(repo.url);
    expect(readdirSync(repoDir)).toHaveLength(2); // the checkout and its link, no lock left
  });

  it("keeps a repository's most recently used checkouts and removes older ones no task holds", async () => {
    const many = bareRepository("many", Object.fromEntries(["b1", "b2", "b3", "b4", "b5", "b6"].map((b) => [b, { "name.txt": `${b}\n` }])));
    const checkouts = new GitCheckouts(join(root, "cache-evict"), { keep: 2 });
    const env = gitEnv({ PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" });
    const take = (branch: string) => checkouts.checkout(many.url, { kind: "branch", name: branch }, env, new AbortController().signal);
    const repoDir = checkouts.repositoryDir(many.url);
    const kept = () => readdirSync(repoDir).filter((n) => /^[0-9a-f]{40}$/.test(n)).map((n) => Object.keys(many.commits).find((b) => many.commits[b] === n)).sort();
    const folders = () => readdirSync(repoDir).filter((n) => n.includes(".d-")).length;
    /** Marks a checkout as used `secondsAgo`. */
    const usedAgo = (branch: string, secondsAgo: number) => {
      const t = new Date(Date.now() - secondsAgo * 1000);
      lutimesSync(join(repoDir, many.commits[branch]!), t, t);
    };

    for (const b of ["b1", "b2"]) await (await take(b)).release();
    usedAgo("b1", 30);
    const b3 = await take("b3");
    // Three prepared, two kept: the least recently used (b1) went, link and folder.
    expect(kept()).toEqual(["b2", "b3"]);
    expect(folders()).toBe(2);
    expect(readFileSync(join(b3.dir, "name.txt"), "utf8")).toBe("b3\n");

    // A checkout a task holds stays, however old: b3 is held and the oldest, beyond the two kept.
    usedAgo("b3", 60);
    usedAgo("b2", 30);
    await (await take("b4")).release();
    expect(kept()).toEqual(["b2", "b3", "b4"]);
    await (await take("b5")).release();
    expect(kept()).toEqual(["b3", "b4", "b5"]);
    expect(readFileSync(join(b3.dir, "name.txt"), "utf8")).toBe("b3\n");
    // Released, it goes at the next eviction.
    await b3.release();
    expect(await checkouts.evict(many.url)).toEqual([many.commits.b3]);
    expect(kept()).toEqual(["b4", "b5"]);
    expect(existsSync(b3.dir)).toBe(false);

    // A use file of a process that is gone holds nothing (and is cleared).
    const gone = spawnSync("true").pid!;
    writeFileSync(join(repoDir, `${many.commits.b4}.use-${gone}-abc`), "");
    usedAgo("b4", 60);
    await (await take("b6")).release();
    expect(kept()).toEqual(["b5", "b6"]);
    expect(readdirSync(repoDir).filter((n) => n.includes(".use-"))).toEqual([]);

    // An evicted commit is cloned again when a task wants it.
    const clones = checkouts.clones;
    const again = await take("b1");
    expect(readFileSync(join(again.dir, "name.txt"), "utf8")).toBe("b1\n");
    expect(checkouts.clones).toBe(clones + 1);
    await again.release();
    expect(folders()).toBe(2);
  });

  it("runs npm ci once when the checkout has a package-lock.json", async () => {
    const packageJson = {
      name: "tiny",
      version: "1.0.0",
      private: true,
      scripts: { postinstall: "node -e \"require('fs').appendFileSync('installed-by', process.env.npm_command + '\\\\n')\"" },
    };
    const lock = { name: "tiny", version: "1.0.0", lockfileVersion: 3, requires: true, packages: { "": { name: "tiny", version: "1.0.0" } } };
    const npmRepo = bareRepository("npm-app", {
      main: { "package.json": JSON.stringify(packageJson, null, 2), "package-lock.json": JSON.stringify(lock, null, 2) },
    });
    const cacheDir = join(root, "cache-npm");
    const input: RunScriptInput = { command: "cat installed-by", environment: { git: { url: npmRepo.url, branch: "main" } } };
    expect((await run(input, cacheDir)).stdoutTail).toBe("ci\n");
    // Prepared once per commit: the second task finds it installed, not installed again.
    expect((await run(input, cacheDir)).stdoutTail).toBe("ci\n");
  });

  it.runIf(findOnPath("uv", process.env.PATH) === undefined)("says uv is missing for a checkout with a uv.lock, not to be retried", async () => {
    const uvRepo = bareRepository("uv-app", { main: { "pyproject.toml": '[project]\nname = "x"\nversion = "0.1.0"\n', "uv.lock": "version = 1\n" } });
    const cacheDir = join(root, "cache-uv");
    const err = await run({ command: "true", environment: { git: { url: uvRepo.url, branch: "main" } } }, cacheDir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnrecoverableTaskError);
    expect((err as Error).message).toContain("the repository has a uv.lock, so it needs `uv sync`, but uv is not on this runner's PATH");
    // Nothing half-prepared is left to be used later.
    expect(readdirSync(gitCheckouts(cacheDir).repositoryDir(uvRepo.url))).toEqual([]);
  });
});
