// corral hardware create|list|get|delete
import type { Command } from "commander";
import { HardwareProfileSchema, type HardwareProfile } from "@corral/proto";
import { formatMemory } from "@corral/sdk";
import { intArg, type CliContext } from "../context.js";
import { details, messageJson, table, time } from "../output.js";

function show(ctx: CliContext, cmd: Command, h: HardwareProfile): void {
  if (ctx.json(cmd)) return ctx.io.out(messageJson(HardwareProfileSchema, h));
  ctx.io.out(
    details([
      ["id", h.id],
      ["name", h.name],
      ["cpu cores", h.cpuCores ? String(h.cpuCores) : "-"],
      ["memory", h.memoryBytes ? formatMemory(h.memoryBytes) : "-"],
      ["gpus", h.gpuCount ? `${h.gpuCount} ${h.gpuType}`.trim() : "-"],
      ["created", time(h.createTime)],
    ]),
  );
}

export function registerHardwareCommands(program: Command, ctx: CliContext): void {
  const hardware = program.command("hardware").description("named hardware profiles for cluster specs");

  hardware
    .command("create <name>")
    .description("a named hardware profile; CPU and memory are optional (a GPU-only entry leaves them to the spec)")
    .option("--cpu <n>", "CPU cores", intArg(1, 100000))
    .option("--memory <size>", 'memory, e.g. "64 GiB"')
    .option("--gpu <n>", "GPU count", intArg(0, 1024))
    .option("--gpu-type <type>", "GPU model, e.g. A100")
    .action(async (name: string, o: { cpu?: number; memory?: string; gpu?: number; gpuType?: string }, cmd: Command) => {
      show(ctx, cmd, await ctx.client(cmd).hardware().create({ name, cpuCores: o.cpu, memory: o.memory, gpuCount: o.gpu, gpuType: o.gpuType }));
    });

  hardware
    .command("list")
    .alias("ls")
    .action(async (_o: unknown, cmd: Command) => {
      const all = await ctx.client(cmd).hardware().all();
      if (ctx.json(cmd)) return ctx.io.out(messageJson(HardwareProfileSchema, all));
      ctx.io.out(
        table(
          ["ID", "NAME", "CPU", "MEMORY", "GPU"],
          all.map((h) => [h.id, h.name, h.cpuCores ? String(h.cpuCores) : "-", h.memoryBytes ? formatMemory(h.memoryBytes) : "-", h.gpuCount ? `${h.gpuCount} ${h.gpuType}`.trim() : "-"]),
        ),
      );
    });

  hardware
    .command("get <id>")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      show(ctx, cmd, await ctx.client(cmd).hardware().find(id));
    });

  hardware
    .command("delete <id>")
    .alias("rm")
    .description("delete a hardware profile no cluster or configuration spec names")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      await ctx.client(cmd).hardware().delete(id);
      ctx.io.out(ctx.json(cmd) ? JSON.stringify({ deleted: id }) : `deleted ${id}`);
    });
}
