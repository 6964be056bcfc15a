import { describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execSync } from "node:child_process";
import { ExecutionContext } from "../execution-context.js";
import { createJobCache, InMemoryCache } from "../cache.js";
import { createSdkLogger } from "../logger.js";
import { UnrecoverableTaskError } from "../errors.js";
import { Echo } from "./echo.js";
import { RunScript } from "./run-script.js";
import { resolveScriptPolicy, scriptsDisallowed, type ScriptPolicy } from "./script-policy.js";

/** Scripts allowed, as a runner started with --allow-scripts (and, when tests run as root, --allow-scripts-as-root). */
const allowed = resolveScriptPolicy({ allowScripts: true, allowScriptsAsRoot: true });

function context(signal = new AbortController().signal, cache = new InMemoryCache(), scripts: ScriptPolicy = allowed) {
  return new ExecutionContext({
    job: { id: "job", name: "test" },
    task: { id: "task-1", attempt: 1, display: "", parentId: "", clusterSlug: "", retryCount: 0, maxRetries: 0 },
    signal,
    logger: createSdkLogger("test", "silent"),
    cache: createJobCache(cache, "job"),
    scripts,
  });
}

describe("corral/Echo", () => {
  it("displays its message and stores it in the job cache", async () => {
    const ctx = context();
    await new Echo({ message: "hello" }).execute(ctx);
    expect(ctx.result.display).toBe("hello");
    expect(await ctx.cache.getText(Echo.cacheKey("task-1"))).toBe("hello");
  });

  it("stops waiting when its signal aborts", async () => {
    const ac = new AbortController();
    const run = new Echo({ message: "x", delayMs: 60_000 }).execute(context(ac.signal));
    ac.abort(new Error("canceled"));
    await expect(run).rejects.toThrow("canceled");
  });

  it("rejects a missing message as unrecoverable", async () => {
    await expect(new Echo({} as never).execute(context())).rejects.toBeInstanceOf(UnrecoverableTaskError);
  });
});

describe("corral/RunScript", { timeout: 30_000 }, () => {
  it("fails, not to be retried, on a runner that does not allow scripts", async () => {
    const err = await new RunScript({ command: "true" }).execute(context(undefined, undefined, scriptsDisallowed)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnrecoverableTaskError);
    expect((err as Error).message).toContain("--allow-scripts");
  });

  it("refuses to run as root unless the runner allows it", async () => {
    const notAsRoot = resolveScriptPolicy({ allowScripts: true }, 1000);
    const err = await new RunScript({ command: "true" }).execute(context(undefined, undefined, notAsRoot)).catch((e: unknown) => e);
    if (process.getuid?.() === 0) {
      expect(err).toBeInstanceOf(UnrecoverableTaskError);
      expect((err as Error).message).toContain("--allow-scripts-as-root");
    } else {
      expect(err).toBeUndefined();
    }
  });

  it("shows the script only a minimal environment, plus the variables the runner passes", async () => {
    process.env.CORRAL_TEST_SECRET = "s3cret";
    process.env.CORRAL_TEST_PASSED = "passed";
    try {
      const run = async (scripts: ScriptPolicy) => {
        const ctx = context(undefined, undefined, scripts);
        await new RunScript({ command: "sh", args: ["-c", 'echo "[$CORRAL_TEST_SECRET][$CORRAL_TEST_PASSED][$PATH]"'] }).execute(ctx);
        return (await ctx.cache.getText(RunScript.cacheKeys("task-1").output))!.trim();
      };
      expect(await run(allowed)).toBe(`[][][${process.env.PATH}]`);
      expect(await run(resolveScriptPolicy({ allowScripts: true, allowScriptsAsRoot: true, scriptEnvPass: ["CORRAL_TEST_PASSED"] }))).toBe(
        `[][passed][${process.env.PATH}]`,
      );
      expect(await run(resolveScriptPolicy({ allowScripts: true, allowScriptsAsRoot: true, scriptEnv: "inherit" }))).toBe(
        `[s3cret][passed][${process.env.PATH}]`,
      );
    } finally {
      delete process.env.CORRAL_TEST_SECRET;
      delete process.env.CORRAL_TEST_PASSED;
    }
  });

  it("runs a real command with args, cwd and env, capturing its output", async () => {
    const dir = await mkdtemp(join(tmpdir(), "corral-rs-"));
    try {
      const ctx = context();
      await new RunScript({
        command: "sh",
        args: ["-c", 'echo "in $(pwd) as $GREETING"; echo warn >&2'],
        cwd: dir,
        env: { GREETING: "hi" },
      }).execute(ctx);
      const keys = RunScript.cacheKeys("task-1");
      const out = await ctx.cache.getText(keys.output);
      expect(out).toContain(`in ${dir} as hi`);
      expect(out).toContain("warn");
      expect(await ctx.cache.getText(keys.exitCode)).toBe("0");
      expect(ctx.result.display).toMatch(/^exit 0\n/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("fails on a non-zero exit, keeping only the output tail", async () => {
    const ctx = context();
    const err = await new RunScript({ command: "sh", args: ["-c", "head -c 20000 /dev/zero | tr '\\0' a; echo; echo last line; exit 3"] })
      .execute(ctx)
      .catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain("exit 3");
    expect((err as Error).message).toContain("last line");
    const out = (await ctx.cache.getText(RunScript.cacheKeys("task-1").output))!;
    expect(Buffer.byteLength(out)).toBeLessThanOrEqual(4096);
    expect(Buffer.byteLength(ctx.result.display!)).toBeLessThanOrEqual(1024);
  });

  it("kills the whole process group on cancel", async () => {
    const dir = await mkdtemp(join(tmpdir(), "corral-rs-"));
    try {
      const ac = new AbortController();
      const ctx = context(ac.signal);
      // The shell starts a child that would write a file after a while; both must die.
      const marker = `${30 + Math.floor(Math.random() * 1000) / 1000}`;
      const sleeping = () => execSync(`ps -eo args | grep -c "^sleep ${marker}$" || true`).toString().trim();
      const run = new RunScript({
        command: "sh",
        args: ["-c", `(sleep ${marker}; touch ${join(dir, "survived")}) & wait`],
      }).execute(ctx);
      await expect.poll(sleeping, { timeout: 10_000 }).toBe("1");
      ac.abort(new Error("job canceled"));
      await expect(run).rejects.toThrow();
      await expect.poll(sleeping, { timeout: 10_000 }).toBe("0");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
