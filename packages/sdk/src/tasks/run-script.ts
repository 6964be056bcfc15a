// corral/RunScript: runs a command on the runner's machine (Mindtrace's RunScriptWorker), on the
// host, in a git checkout or in a container. Returns the exit code and the output tails; a non-zero
// exit fails the task; a cancel kills the process group. Only on runners started with
// allowScripts (--allow-scripts): see script-policy.ts.
import { hostname } from "node:os";
import type { ExecutionContext } from "../execution-context.js";
import { UnrecoverableTaskError } from "../errors.js";
import { Task } from "../task.js";
import { containerRunArgv, resolveContainerEngine } from "./container-engine.js";
import { tailBytes, truncateBytes } from "./echo.js";
import { checkoutWorkdir, gitCheckouts, gitEnv, withoutPassword } from "./git-checkouts.js";
import { spawnCommand, type CommandResult } from "./run-command.js";
import { parseRunScriptInput, type RunScriptInput } from "./run-script-input.js";
import { ScriptFailedError, type RunScriptOutput } from "./script-failure.js";
import { scriptBaseEnv, scriptsDisallowed, type ScriptPolicy } from "./script-policy.js";

export type { RunScriptInput } from "./run-script-input.js";
export type { RunScriptOutput } from "./script-failure.js";

/** What {@link runCommand} answers: the exit, the output tails and both streams interleaved. */
export type RunScriptResult = CommandResult;

/**
 * Runs a command on the runner's host as the runner's user: a shell command line, or a program
 * with `args`; in a git checkout (`environment.git`, cloned once per commit and prepared with
 * `npm ci` / `uv sync`) or a container (`environment.docker`, through docker or podman). Returns
 * `{ exitCode, stdoutTail, stderrTail }`; a non-zero exit fails the task with a ScriptFailedError
 * quoting them (unless `allowFailure`). Anyone holding a key of the team can submit one, so a
 * runner refuses it (failing the task, not to be retried) unless started with `allowScripts: true`
 * (`corral runner start --allow-scripts`).
 *
 * @example
 * await client.jobs().run("build", new RunScript({ command: "npm test | tail -n 20",
 *   environment: { git: { url: "https://github.com/acme/app.git", branch: "main", workdir: "web" } } }));
 * await client.jobs().submit("list", new RunScript({ command: "ls", args: ["-la", "/tmp"] }));
 */
export class RunScript extends Task<RunScriptInput, RunScriptOutput> {
  static override identifier = { name: "corral/RunScript", version: "v1.0" };

  /** Cache keys of a task's result: the output tail and the exit code. */
  static cacheKeys(taskId: string) {
    return { output: `corral/RunScript/${taskId}/output`, exitCode: `corral/RunScript/${taskId}/exit-code` };
  }

  override async execute(ctx: ExecutionContext): Promise<RunScriptOutput> {
    refuseUnlessAllowed(ctx.scripts);
    const spec = parseRunScriptInput(this.input);
    const baseEnv = scriptBaseEnv(ctx.scripts);
    let argv = spec.argv;
    let cwd = spec.cwd;
    let env = spec.inheritEnv ? { ...baseEnv, ...spec.env } : { ...spec.env };
    const git = spec.git;
    if (git) ctx.setDisplay(truncateBytes(`preparing ${withoutPassword(git.url)}`, 1000));
    const checkout = git ? await gitCheckouts(ctx.scripts.cacheDir).checkout(git.url, git.ref, gitEnv(baseEnv), ctx.signal) : undefined;
    // The checkout is held while the command runs; it may be evicted once no task runs in it.
    try {
      if (git && checkout) {
        cwd = await checkoutWorkdir(checkout, git.workdir, git.url);
        env = { ...env, CORRAL_GIT_COMMIT: checkout.commit };
      }
      if (spec.docker) {
        const { engine, program } = await resolveContainerEngine(baseEnv, ctx.signal);
        argv = containerRunArgv(engine, {
          image: spec.docker.image,
          workdir: spec.docker.workdir,
          volumes: spec.docker.volumes,
          // The container sees what the input says, never the runner's environment.
          env: { ...spec.docker.env, ...spec.env },
          argv: spec.argv,
          name: `corral-${ctx.task.id}-${ctx.task.attempt}`,
        });
        argv[0] = program;
        // The CLI itself runs with the script environment (DOCKER_HOST and the like if the runner passes them).
        env = baseEnv;
      }
      const result = await runCommandIn(argv, cwd, env, spec.timeoutMs, spec.tailBytes, ctx.signal, spec.display);
      const keys = RunScript.cacheKeys(ctx.task.id);
      await ctx.cache.put(keys.output, result.output);
      await ctx.cache.put(keys.exitCode, String(result.exitCode ?? result.signal));
      const status = result.exitCode !== null ? `exit ${result.exitCode}` : `killed by ${result.signal}`;
      ctx.setDisplay(tailBytes(`${status}\n${result.output}`, 1000));
      ctx.signal.throwIfAborted();
      const output: RunScriptOutput = { exitCode: result.exitCode, stdoutTail: result.stdoutTail, stderrTail: result.stderrTail };
      if (result.signal !== null) output.signal = result.signal;
      if (checkout) output.commit = checkout.commit;
      if (result.exitCode !== 0 && !(spec.allowFailure && result.exitCode !== null)) throw new ScriptFailedError(spec.display, output);
      return output;
    } finally {
      await checkout?.release();
    }
  }
}

/** Runs argv, turning a program that cannot be started into an error that says so. */
async function runCommandIn(
  argv: string[],
  cwd: string | undefined,
  env: Record<string, string>,
  timeoutMs: number | undefined,
  tail: number,
  signal: AbortSignal,
  display: string,
): Promise<RunScriptResult> {
  try {
    return await spawnCommand({ argv, cwd, env, timeoutMs, tailBytes: tail }, signal);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "EACCES") {
      // The same input on the same runner fails the same way.
      throw new UnrecoverableTaskError(
        `corral/RunScript cannot start ${JSON.stringify(argv[0])}${cwd ? ` in ${cwd}` : ""} for ${JSON.stringify(display)}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    throw err;
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
 * Runs a command (a program and `args`, no shell) in its own process group, killing the group
 * when the signal aborts. The command sees `baseEnv` (default: the minimal script environment of
 * this process) plus `input.env`.
 */
export function runCommand(
  input: { command: string; args?: string[]; cwd?: string; env?: Record<string, string>; inheritEnv?: boolean; timeoutMs?: number },
  signal: AbortSignal,
  baseEnv: Record<string, string> = scriptBaseEnv(scriptsDisallowed),
): Promise<RunScriptResult> {
  const env = input.inheritEnv === false ? { ...input.env } : { ...baseEnv, ...input.env };
  return spawnCommand({ argv: [input.command, ...(input.args ?? [])], cwd: input.cwd, env, timeoutMs: input.timeoutMs }, signal);
}
