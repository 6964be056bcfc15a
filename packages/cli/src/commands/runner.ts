// corral runner start (run tasks on this machine) and corral runner logs (output of a runner an agent started)
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Command } from "commander";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { builtinTasks, Client, createSdkLogger, LocalFileCache, resolveScriptPolicy, ScriptPolicyError, type LogFormat, type Runner, type TaskClass } from "@corral/sdk";
import { collect, collectPairs, intArg, type CliContext } from "../context.js";
import { UsageError } from "../exit-codes.js";
import { watchParent } from "../agent/parent-watch.js";

function isTaskClass(value: unknown): value is TaskClass {
  return (
    typeof value === "function" &&
    typeof (value as { prototype?: { execute?: unknown } }).prototype?.execute === "function"
  );
}

/** The task classes a module exports (named exports, a default export, or arrays of them). */
export async function loadTaskModule(path: string, cwd: string): Promise<TaskClass[]> {
  const url = pathToFileURL(resolve(cwd, path)).href;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (err) {
    const hint = /\.ts$/.test(path) && /require/i.test((err as Error).message)
      ? ' (a .ts module needs "type": "module" in the nearest package.json, or name it .mts)'
      : "";
    throw new UsageError(`cannot load task module ${path}: ${(err as Error).message}${hint}`);
  }
  const found = new Set<TaskClass>();
  for (const value of Object.values(mod)) {
    for (const v of Array.isArray(value) ? value : [value]) if (isTaskClass(v)) found.add(v);
  }
  if (found.size === 0) throw new UsageError(`${path} exports no task classes`);
  return [...found];
}

const scriptsHelp = `
Scripts (corral/RunScript) run any command that any key of the team submits, on this host, as this
runner's user. They are refused (the task fails, not to be retried) unless --allow-scripts is given.
With it, a script sees only PATH, HOME, USER, LOGNAME, LANG, LC_ALL, LC_CTYPE, TZ and TMPDIR of this
runner's environment (not its keys or passwords) unless --script-env inherit or --script-env-pass
says more; and a runner running as root refuses to start unless --allow-scripts-as-root is given.
Allow scripts only on runners whose host and environment every holder of a team key may use.
A script's git environment is cloned once per commit into --script-cache-dir (default
$CORRAL_CACHE_DIR/scripts, else ~/.cache/corral/scripts; the 5 most recently used commits of each
repository are kept, older ones removed once no task runs in them); its docker environment needs
the docker or podman CLI on this runner's PATH (without one, such tasks fail and are not retried).

Built-in task inputs (--builtins; JSON, ? = optional):
  corral/Echo@v1.0       { message, delay?: seconds, delayMs?, fail? }  returns { echoed }
  corral/RunScript@v1.0  { command: "a shell line" | ["program", "arg", ...],
                           args?: [...] (with a command string: run it without a shell),
                           env?: { NAME: value }, cwd?, timeoutMs?, tailBytes? (4096),
                           allowFailure? (a non-zero exit completes the task),
                           environment?: { git: { url, branch? | ref?, workdir? } }
                                       | { docker: { image, workdir?, volumes?: ["src:dst"], env? } } }
                         returns { exitCode, stdoutTail, stderrTail }; a non-zero exit fails the
                         task with the exit code and the end of stderr in its error.
  e.g. corral job submit --task corral/RunScript@v1.0 --input '{"command": "uname -a | tr a-z A-Z"}'`;

/**
 * Ctrl-C (or SIGTERM) handling of `runner start`: the first signal drains (saying for how long),
 * the second hands the running tasks back to the queue at once, a third exits.
 */
export function createStopSignals(runner: Pick<Runner, "stop" | "handBack" | "runningTasks">, graceSeconds: number, say: (line: string) => void) {
  let signals = 0;
  return (signal: string) => {
    signals += 1;
    if (signals === 1) {
      say(
        `${signal}: draining: no new tasks; the ${runner.runningTasks} running may finish for up to ${graceSeconds}s. ` +
          "Press Ctrl-C again to hand them back to the queue at once (another runner takes them, no retry counted).",
      );
      void runner.stop();
    } else if (signals === 2) {
      say(`${signal}: handing ${runner.runningTasks} running task${runner.runningTasks === 1 ? "" : "s"} back to the queue now`);
      void runner.handBack();
    } else {
      process.exit(130);
    }
  };
}

/** Commander parser for a comma-separated list (repeatable). */
function commaList(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(",").map((v) => v.trim()).filter((v) => v !== "")];
}

export function registerRunnerCommands(program: Command, ctx: CliContext): void {
  const runner = program.command("runner").description("run tasks on this machine");

  runner
    .command("start")
    .description("connect to a cluster and run its tasks until SIGTERM (without --tasks: the releases deployed to it)")
    .option("-c, --cluster <slug>", "cluster (default: the team's default cluster)")
    .option("-t, --tasks <module>", "a module exporting task classes (repeatable)", collect, [])
    .option("--builtins", "also run the built-in tasks corral/Echo and corral/RunScript (see --allow-scripts)")
    .option("--fallback-builtins", "a release runner: run the built-in tasks while no release is deployed to the cluster (what corral agent starts)")
    .option("--concurrency <n>", "tasks run at once", intArg(1, 10000), 1)
    .option("--runner-id <id>", "this runner's node id (default: hostname, pid and a random suffix)")
    .option("--label <key=value>", "a label shown on the node (repeatable)", collectPairs, {})
    .option("--cache-dir <dir>", "keep the job cache in this folder, shared only by runners on this machine (default: the suite's shared job cache)")
    .option("--drain-grace <seconds>", "how long running tasks may finish on SIGTERM", intArg(0), 30)
    .option("--until-idle", "stop once no work arrives for a moment (runAll)")
    .option("--allow-scripts", "run corral/RunScript tasks: commands of any team key on this host (default: refused)")
    .option("--allow-scripts-as-root", "allow scripts even when this runner runs as root")
    .option("--script-env <mode>", "what scripts see of this runner's environment: minimal or inherit", "minimal")
    .option("--script-env-pass <names>", "also pass these variables to scripts (comma-separated, repeatable)", commaList, [])
    .option("--script-cache-dir <dir>", "where scripts' git checkouts are cached (default: $CORRAL_CACHE_DIR/scripts or ~/.cache/corral/scripts)")
    .option("--log-format <format>", "pretty (plain lines) or json (default: pretty on a terminal, json when piped)")
    .addHelpText("after", scriptsHelp)
    .action(
      async (
        o: {
          cluster?: string;
          tasks: string[];
          builtins?: boolean;
          fallbackBuiltins?: boolean;
          concurrency: number;
          runnerId?: string;
          label: Record<string, string>;
          cacheDir?: string;
          drainGrace: number;
          untilIdle?: boolean;
          allowScripts?: boolean;
          allowScriptsAsRoot?: boolean;
          scriptEnv: string;
          scriptEnvPass: string[];
          scriptCacheDir?: string;
          logFormat?: string;
        },
        cmd: Command,
      ) => {
        if (o.logFormat !== undefined && o.logFormat !== "pretty" && o.logFormat !== "json") {
          throw new UsageError(`unknown --log-format ${JSON.stringify(o.logFormat)}: use pretty or json`);
        }
        const format: LogFormat = (o.logFormat as LogFormat | undefined) ?? (process.stdout.isTTY ? "pretty" : "json");
        const logger = createSdkLogger("corral-runner", ctx.env.CORRAL_LOG_LEVEL ?? "info", { format });
        const scripts = {
          allowScripts: o.allowScripts === true,
          allowScriptsAsRoot: o.allowScriptsAsRoot === true,
          scriptEnv: o.scriptEnv as "minimal" | "inherit",
          scriptEnvPass: o.scriptEnvPass,
          scriptCacheDir: o.scriptCacheDir === undefined ? undefined : resolve(ctx.cwd, o.scriptCacheDir),
        };
        try {
          resolveScriptPolicy(scripts);
        } catch (err) {
          if (err instanceof ScriptPolicyError) throw new UsageError(err.message);
          throw err;
        }
        if (!scripts.allowScripts && (o.allowScriptsAsRoot || o.scriptEnvPass.length > 0 || o.scriptEnv !== "minimal" || o.scriptCacheDir !== undefined)) {
          throw new UsageError("--allow-scripts-as-root, --script-env, --script-env-pass and --script-cache-dir need --allow-scripts");
        }
        const classes: TaskClass[] = [];
        for (const path of o.tasks) classes.push(...(await loadTaskModule(path, ctx.cwd)));
        if (o.builtins) classes.push(...builtinTasks);
        // Started by `corral agent`: drain when the agent is gone (even after its kill -9), and do
        // not outlive the drain grace doing it.
        const stopWhenAgentGone = (stop: () => Promise<void>, id: string) =>
          watchParent(() => {
            ctx.io.err(`runner ${id}: its agent is gone, stopping`);
            void stop();
            setTimeout(() => process.exit(1), o.drainGrace * 1000 + 15_000).unref();
          }, ctx.env);
        // Runs `run` with Ctrl-C/SIGTERM draining `target` (see createStopSignals) and the agent watch.
        const runUntilStopped = async (
          target: Pick<Runner, "stop" | "handBack" | "runningTasks">,
          id: string,
          graceSeconds: number,
          say: (line: string) => void,
          run: () => Promise<void>,
        ): Promise<void> => {
          const onSignal = createStopSignals(target, graceSeconds, say);
          const onInt = () => onSignal("SIGINT");
          const onTerm = () => onSignal("SIGTERM");
          process.on("SIGINT", onInt);
          process.on("SIGTERM", onTerm);
          const parent = stopWhenAgentGone(() => target.stop(), id);
          try {
            await run();
          } finally {
            parent?.close();
            process.off("SIGINT", onInt);
            process.off("SIGTERM", onTerm);
          }
        };
        if (o.fallbackBuiltins && classes.length > 0) throw new UsageError("--fallback-builtins is for a release runner (without --tasks and --builtins)");
        if (classes.length === 0) {
          // No task module: a release runner, serving what is deployed to the cluster.
          if (o.untilIdle) throw new UsageError("--until-idle needs --tasks (a release runner follows its deployments until stopped)");
          // CORRAL_REGISTRY_URL: the registry when CORRAL_URL routes only the broker (services on
          // their own ports, as `corral agent` may launch runners).
          const registryUrl = ctx.env.CORRAL_REGISTRY_URL;
          const client = ctx.client(cmd);
          const rr = client.releaseRunner({
            ...(registryUrl ? { apiTransport: new Client({ url: registryUrl, apiKey: client.apiKey }).transport } : {}),
            ...(o.fallbackBuiltins ? { fallbackTasks: [...builtinTasks] } : {}),
            cluster: o.cluster,
            concurrency: o.concurrency,
            runnerId: o.runnerId,
            labels: o.label,
            cache: o.cacheDir ? new LocalFileCache(resolve(ctx.cwd, o.cacheDir)) : undefined,
            drainGraceMs: o.drainGrace * 1000,
            logger,
            ...scripts,
          });
          ctx.io.err(
            `release runner ${rr.id}: the releases deployed to ${o.cluster || "the default cluster"}${o.fallbackBuiltins ? " (the built-in tasks while none is)" : ""}, concurrency ${o.concurrency}${scripts.allowScripts ? `, scripts allowed (environment: ${scripts.scriptEnv})` : ""}`,
          );
          // The release runner's stop() also stops its child processes once the runner drained.
          const target = { stop: () => rr.stop(), handBack: () => rr.runner.handBack(), get runningTasks() { return rr.runner.runningTasks; } };
          await runUntilStopped(target, rr.runner.id, o.drainGrace, (line) => ctx.io.err(line), () => rr.runForever({ handleSignals: false }));
          return;
        }
        const r = ctx.client(cmd).runner({
          cluster: o.cluster,
          tasks: classes,
          concurrency: o.concurrency,
          runnerId: o.runnerId,
          labels: o.label,
          cache: o.cacheDir ? new LocalFileCache(resolve(ctx.cwd, o.cacheDir)) : undefined,
          drainGraceMs: o.drainGrace * 1000,
          logger,
          ...scripts,
        });
        ctx.io.err(
          `runner ${r.id}: ${r.identifiers.map((i) => `${i.name}@${i.version}`).join(", ")} on ${o.cluster || "the default cluster"}, concurrency ${o.concurrency}${scripts.allowScripts ? `, scripts allowed (environment: ${scripts.scriptEnv})` : ""}`,
        );
        await runUntilStopped(r, r.id, o.drainGrace, (line) => ctx.io.err(line), () =>
          o.untilIdle ? r.runAll({ handleSignals: false }) : r.runForever({ handleSignals: false }),
        );
      },
    );

  runner
    .command("logs <node>")
    .description("the last lines a runner started by corral agent wrote to stdout and stderr")
    .option("-n, --tail <n>", "at most this many lines, newest kept", intArg(1, 10000), 200)
    .action(async (node: string, o: { tail: number }, cmd: Command) => {
      const { lines, dropped } = await ctx.client(cmd).nodes().logs(node, { tail: o.tail });
      if (ctx.json(cmd)) {
        return ctx.io.out(
          JSON.stringify(
            {
              lines: lines.map((l) => ({ time: l.time ? timestampDate(l.time).toISOString() : null, stream: l.stream, text: l.text })),
              dropped: dropped.toString(),
            },
            null,
            2,
          ),
        );
      }
      if (dropped > 0n) ctx.io.err(`(${dropped} earlier lines were dropped: the kept tail is bounded)`);
      // Each line escaped by the Io: a runner's output cannot drive the terminal.
      for (const l of lines) ctx.io.out(`${l.time ? timestampDate(l.time).toISOString() : "-"} ${l.stream === "stderr" ? "E" : " "} ${l.text}`);
    });
}
