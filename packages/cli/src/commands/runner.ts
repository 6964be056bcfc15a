// corral runner start --cluster X --tasks ./module.js --concurrency N
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Command } from "commander";
import { builtinTasks, LocalFileCache, type TaskClass } from "@corral/sdk";
import { collect, collectPairs, intArg, type CliContext } from "../context.js";
import { UsageError } from "../exit-codes.js";

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

export function registerRunnerCommands(program: Command, ctx: CliContext): void {
  const runner = program.command("runner").description("run tasks on this machine");

  runner
    .command("start")
    .description("connect to a cluster and run its tasks until SIGTERM")
    .option("-c, --cluster <slug>", "cluster (default: the team's default cluster)")
    .option("-t, --tasks <module>", "a module exporting task classes (repeatable)", collect, [])
    .option("--builtins", "also run the built-in tasks corral/Echo and corral/RunScript")
    .option("--concurrency <n>", "tasks run at once", intArg(1, 10000), 1)
    .option("--label <key=value>", "a label shown on the node (repeatable)", collectPairs, {})
    .option("--cache-dir <dir>", "keep the job cache in this folder (default: in memory)")
    .option("--drain-grace <seconds>", "how long running tasks may finish on SIGTERM", intArg(0), 30)
    .option("--until-idle", "stop once no work arrives for a moment (runAll)")
    .action(
      async (
        o: {
          cluster?: string;
          tasks: string[];
          builtins?: boolean;
          concurrency: number;
          label: Record<string, string>;
          cacheDir?: string;
          drainGrace: number;
          untilIdle?: boolean;
        },
        cmd: Command,
      ) => {
        const classes: TaskClass[] = [];
        for (const path of o.tasks) classes.push(...(await loadTaskModule(path, ctx.cwd)));
        if (o.builtins) classes.push(...builtinTasks);
        if (classes.length === 0) throw new UsageError("no tasks to run: give --tasks <module> and/or --builtins");
        const r = ctx.client(cmd).runner({
          cluster: o.cluster,
          tasks: classes,
          concurrency: o.concurrency,
          labels: o.label,
          cache: o.cacheDir ? new LocalFileCache(resolve(ctx.cwd, o.cacheDir)) : undefined,
          drainGraceMs: o.drainGrace * 1000,
        });
        ctx.io.err(
          `runner ${r.id}: ${r.identifiers.map((i) => `${i.name}@${i.version}`).join(", ")} on ${o.cluster || "the default cluster"}, concurrency ${o.concurrency}`,
        );
        // The runner drains on the first SIGINT/SIGTERM; a second one means "now".
        let signals = 0;
        const force = () => {
          if (++signals > 1) process.exit(130);
        };
        process.on("SIGINT", force);
        process.on("SIGTERM", force);
        try {
          if (o.untilIdle) await r.runAll();
          else await r.runForever();
        } finally {
          process.off("SIGINT", force);
          process.off("SIGTERM", force);
        }
      },
    );
}
