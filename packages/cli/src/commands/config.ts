// corral config create|list|get|delete: named cluster specs (Coiled's configurations).
import type { Command } from "commander";
import { ConfigurationSchema, type Configuration } from "@corral/proto";
import { formatMemory } from "@corral/sdk";
import { intArg, type CliContext } from "../context.js";
import { details, messageJson, orDash, table } from "../output.js";

function specText(c: Configuration): string {
  const s = c.spec;
  if (!s) return "-";
  const parts: string[] = [];
  if (s.runnerCount !== undefined) parts.push(`${s.runnerCount} runners`);
  if (s.runnerCpuCores !== undefined) parts.push(`${s.runnerCpuCores} cpu`);
  if (s.runnerGpuCount) parts.push(`${s.runnerGpuCount} gpu`);
  if (s.runnerMemoryBytes !== undefined) parts.push(formatMemory(s.runnerMemoryBytes));
  if (s.softwareEnvironment) parts.push(s.softwareEnvironment);
  return parts.join(", ") || "-";
}

function show(ctx: CliContext, cmd: Command, c: Configuration): void {
  if (ctx.json(cmd)) return ctx.io.out(messageJson(ConfigurationSchema, c));
  ctx.io.out(details([["name", c.name], ["description", orDash(c.description)], ["spec", specText(c)], ["builtin", c.builtin ? "yes" : "no"]]));
}

export function registerConfigCommands(program: Command, ctx: CliContext): void {
  const config = program.command("config").description("named cluster specs; corral/default always exists");

  config
    .command("create <name>")
    .option("-d, --description <text>")
    .option("--runners <n>", "runner count", intArg(0, 100000))
    .option("--cpu <n>", "CPU cores per runner", intArg(0, 100000))
    .option("--gpu <n>", "GPUs per runner", intArg(0, 1024))
    .option("--memory <size>", 'memory per runner, e.g. "16 GiB"')
    .option("--software <env>", "software environment")
    .action(
      async (
        name: string,
        o: { description?: string; runners?: number; cpu?: number; gpu?: number; memory?: string; software?: string },
        cmd: Command,
      ) => {
        const c = await ctx.client(cmd).configurations().create(name, {
          description: o.description,
          spec: { runnerCount: o.runners, runnerCpuCores: o.cpu, runnerGpuCount: o.gpu, runnerMemory: o.memory, softwareEnvironment: o.software },
        });
        show(ctx, cmd, c);
      },
    );

  config
    .command("list")
    .alias("ls")
    .action(async (_o: unknown, cmd: Command) => {
      const all = await ctx.client(cmd).configurations().all();
      if (ctx.json(cmd)) return ctx.io.out(messageJson(ConfigurationSchema, all));
      ctx.io.out(table(["NAME", "SPEC", "BUILTIN", "DESCRIPTION"], all.map((c) => [c.name, specText(c), c.builtin ? "yes" : "", orDash(c.description)])));
    });

  config
    .command("get <name>")
    .action(async (name: string, _o: unknown, cmd: Command) => {
      show(ctx, cmd, await ctx.client(cmd).configurations().find(name));
    });

  config
    .command("delete <name>")
    .alias("rm")
    .action(async (name: string, _o: unknown, cmd: Command) => {
      await ctx.client(cmd).configurations().delete(name);
      ctx.io.out(ctx.json(cmd) ? JSON.stringify({ deleted: name }) : `deleted ${name}`);
    });
}
