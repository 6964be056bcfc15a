// corral host list|get: the machines running `corral agent`, their capacity and runners.
import type { Command } from "commander";
import { HostSchema, type Capacity, type Host } from "@corral/proto";
import { formatMemory, hostedRunnerStateName, hostStateName, hostStates, type HostStateName } from "@corral/sdk";
import type { CliContext } from "../context.js";
import { UsageError } from "../exit-codes.js";
import { details, messageJson, orDash, table, time } from "../output.js";

function capacityText(c: Capacity | undefined): string {
  if (!c) return "-";
  const gpu = c.gpuCount > 0 ? `, ${c.gpuCount} gpu${c.gpuType ? ` ${c.gpuType}` : ""}` : "";
  return `${c.cpuCores} cpu, ${formatMemory(c.memoryBytes)}${gpu}`;
}

function usedText(h: Host): string {
  const u = h.used;
  const c = h.capacity;
  if (!u || !c) return "-";
  return `${u.cpuCores}/${c.cpuCores} cpu, ${formatMemory(u.memoryBytes)}/${formatMemory(c.memoryBytes)}${c.gpuCount > 0 ? `, ${u.gpuCount}/${c.gpuCount} gpu` : ""}`;
}

export function registerHostCommands(program: Command, ctx: CliContext): void {
  const host = program.command("host").alias("hosts").description("machines running corral agent, where the registry places runners");

  host
    .command("list")
    .alias("ls")
    .description("list the team's hosts")
    .option("--state <state>", "online, draining or offline")
    .action(async (o: { state?: string }, cmd: Command) => {
      if (o.state !== undefined && !(o.state in hostStates)) {
        throw new UsageError(`unknown state ${JSON.stringify(o.state)}: use online, draining or offline`);
      }
      const hosts = await ctx.client(cmd).hosts().all({ state: o.state as HostStateName | undefined });
      if (ctx.json(cmd)) return ctx.io.out(messageJson(HostSchema, hosts));
      ctx.io.out(
        table(
          ["ID", "NAME", "STATE", "CAPACITY", "USED", "RUNNERS", "LOCATION", "LAST SEEN"],
          hosts.map((h) => [
            h.id,
            h.name,
            hostStateName(h.state),
            capacityText(h.capacity),
            usedText(h),
            String(h.runners.length),
            orDash(h.locationId),
            time(h.lastSeenTime),
          ]),
        ),
      );
    });

  host
    .command("get <host>")
    .description("show a host (by id or name) and the runners placed on it")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const h = await ctx.client(cmd).hosts().find(id);
      if (ctx.json(cmd)) return ctx.io.out(messageJson(HostSchema, h));
      ctx.io.out(
        details([
          ["id", h.id],
          ["name", h.name],
          ["state", hostStateName(h.state)],
          ["capacity", capacityText(h.capacity)],
          ["used", usedText(h)],
          ["location", orDash(h.locationId)],
          ["labels", Object.entries(h.labels).map(([k, v]) => `${k}=${v}`).join(", ") || "-"],
          ["agent", orDash(h.agentVersion)],
          ["connected", time(h.connectTime)],
          ["last seen", time(h.lastSeenTime)],
        ]),
      );
      ctx.io.out("");
      ctx.io.out(
        table(
          ["RUNNER", "CLUSTER", "STATE", "PID", "RESTARTS", "LAST EXIT", "CAPACITY"],
          h.runners.map((r) => [
            r.runnerId,
            r.clusterSlug,
            hostedRunnerStateName(r.state),
            r.pid ? String(r.pid) : "-",
            String(r.restarts),
            orDash(r.lastExit),
            capacityText(r.capacity),
          ]),
        ),
      );
    });
}
