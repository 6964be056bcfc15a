// corral/RunScript: runs a command on the runner's machine (Mindtrace's workers). Captures the exit
// code and the output tail; a non-zero exit fails the task; a cancel kills the process group.
// Only on runners started with allowScripts (--allow-scripts): see script-policy.ts.
import { spawn } from "node:child_process";
import { hostname } from "node:os";
import type { ExecutionContext } from "../execution-context.js";
import { UnrecoverableTaskError } from "../errors.js";
import { Task } from "../task.js";
import { tailBytes } from "./echo.js";
import { scriptBaseEnv, scriptsDisallowed, type ScriptPolicy } from "./script-policy.js";

export interface RunScriptInput {
  command: string;
  args?: string[];
  cwd?: string;
  /**
   * Added to the part of the runner's environment its operator lets scripts see (by default only
   * PATH, HOME, LANG and the like; never more than the runner allows).
   */
  env?: Record<string, string>;
  /** false: only `env`, nothing of the runner's environment. */
  inheritEnv?: boolean;
  /** Kill the command after this long (default: no limit). */
  timeoutMs?: number;
}

export interface RunScriptResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The last ~4 KiB of stdout and stderr, interleaved as they arrived. */
  output: string;
}

const tailSize = 4096;
const killGraceMs = 5000;

/**
 * Runs a command on the runner's host as the runner's user. Anyone holding a key of the team can
 * submit one, so a runner refuses it (failing the task, not to be retried) unless started with
 * `allowScripts: true` (`corral runner start --allow-scripts`).
 *
 * @example
 * await client.jobs().submit("build", new RunScript({ command: "make", args: ["test"], cwd: "/src" }));
 */
export class RunScript extends Task<RunScriptInput> {
  static override identifier = { name: "corral/RunScript", version: "v1.0" };

  /** Cache keys of a task's result: the output tail and the exit code. */
  static cacheKeys(taskId: string) {
    return { output: `corral/RunScript/${taskId}/output`, exitCode: `corral/RunScript/${taskId}/exit-code` };
  }

  override async execute(ctx: ExecutionContext): Promise<void> {
    const input = this.input;
    if (typeof input?.command !== "string" || input.command.length === 0) {
      throw new UnrecoverableTaskError("input.command must be a non-empty string");
    }
    refuseUnlessAllowed(ctx.scripts);
    const result = await runCommand(input, ctx.signal, scriptBaseEnv(ctx.scripts));
    const keys = RunScript.cacheKeys(ctx.task.id);
    await ctx.cache.put(keys.output, result.output);
    await ctx.cache.put(keys.exitCode, String(result.exitCode ?? result.signal));
    const status = result.exitCode !== null ? `exit ${result.exitCode}` : `killed by ${result.signal}`;
    ctx.setDisplay(tailBytes(`${status}\n${result.output}`, 1000));
    ctx.signal.throwIfAborted();
    if (result.exitCode !== 0) {
      throw new Error(`${input.command} ended with ${status}\n--- output tail ---\n${result.output}`);
    }
  }
}

/** Throws an UnrecoverableTaskError when the runner's policy does not let this script run. */
function refuseUnlessAllowed(policy: ScriptPolicy): void {
  if (!policy.allowed) {
    throw new UnrecoverableTaskError(
      `corral/RunScript is disabled on the runner on ${hostname()}: start the runner with --allow-scripts (SDK: allowScripts: true) to let keys of this team run commands on its host`,
    );
  }
  // resolveScriptPolicy refuses this at the runner's start; a policy made by hand is checked too.
  if (process.getuid?.() === 0 && !policy.asRoot) {
    throw new UnrecoverableTaskError(
      `corral/RunScript will not run as root on ${hostname()}: run the runner as an unprivileged user, or start it with --allow-scripts-as-root`,
    );
  }
}

/**
 * Runs a command in its own process group, killing the group when the signal aborts. The command
 * sees `baseEnv` (default: the minimal script environment of this process) plus `input.env`.
 */
export function runCommand(
  input: RunScriptInput,
  signal: AbortSignal,
  baseEnv: Record<string, string> = scriptBaseEnv(scriptsDisallowed),
): Promise<RunScriptResult> {
  return new Promise((resolve, reject) => {
    signal.throwIfAborted();
    const env = input.inheritEnv === false ? { ...input.env } : { ...baseEnv, ...input.env };
    const child = spawn(input.command, input.args ?? [], {
      cwd: input.cwd,
      env,
      detached: true, // its own process group, so a kill reaches its children too
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const append = (chunk: Buffer) => {
      output = tailBytes(output + chunk.toString("utf8"), tailSize);
    };
    child.stdout!.on("data", append);
    child.stderr!.on("data", append);
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (sig: NodeJS.Signals) => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // Already gone.
      }
    };
    const stop = () => {
      killGroup("SIGTERM");
      killTimer = setTimeout(() => killGroup("SIGKILL"), killGraceMs);
      killTimer.unref();
    };
    signal.addEventListener("abort", stop, { once: true });
    const timeout = input.timeoutMs ? setTimeout(stop, input.timeoutMs) : undefined;
    child.on("error", (err) => {
      signal.removeEventListener("abort", stop);
      clearTimeout(timeout);
      clearTimeout(killTimer);
      reject(err);
    });
    let settled = false;
    const finish = (exitCode: number | null, sig: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", stop);
      clearTimeout(timeout);
      clearTimeout(killTimer);
      resolve({ exitCode, signal: sig, output });
    };
    child.on("close", finish);
    // A descendant that left the process group may hold the pipes open: do not wait on it long.
    child.on("exit", (exitCode, sig) => setTimeout(() => finish(exitCode, sig), 1000).unref());
  });
}
