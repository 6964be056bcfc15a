// corral node list|get
import type { Command } from "commander";
import { NodeSchema, NodeState, type Node } from "@corral/proto";
import { formatMemory, type NodeStateName } from "@corral/sdk";
import type { CliContext } from "../context.js";
import { UsageError } from "../exit-codes.js";
import { details, messageJson, orDash, table, time } from "../output.js";
import { hostOf, runningLines, runningSummary } from "./node-running.js";

const stateNames: Record<number, string> = {
  [NodeState.ONLINE]: "online",
  [NodeState.DRAINING]: "draining",
  [NodeState.OFFLINE]: "offline",
};

function identifiers(n: Node): string {
  return n.identifiers.map((i) => `${i.name}@${i.version}`).join(", ");
}

export function registerNodeCommands(program: Command, ctx: CliContext): void {
  const node = program.command("node").description("the runners connected to the suite");

  node
    .command("list")
    .alias("ls")
    .description("list nodes")
    .option("-c, --cluster <slug>", "only this cluster's nodes")
    .option("--state <state>", "online, draining or offline")
    .option("--running", "only online and draining nodes")
    .action(async (o: { cluster?: string; state?: string; running?: boolean }, cmd: Command) => {
      if (o.state && !["online", "draining", "offline"].includes(o.state)) {
        throw new UsageError(`unknown state ${JSON.stringify(o.state)}: use online, draining or offline`);
      }
      const nodes = o.running
        ? await ctx.client(cmd).nodes().running(o.cluster)
        : await ctx.client(cmd).nodes().all({ cluster: o.cluster, state: o.state as NodeStateName | undefined });
      if (ctx.json(cmd)) return ctx.io.out(messageJson(NodeSchema, nodes));
      ctx.io.out(
        table(
          ["ID", "CLUSTER", "STATE", "SLOTS", "BUSY", "HOST", "RUNNING", "TASKS", "LAST SEEN"],
          nodes.map((n) => [
            n.id,
            n.clusterSlug,
            stateNames[n.state] ?? "-",
            String(n.slots),
            String(n.busySlots),
            orDash(n.hostName || n.hostname),
            runningSummary(n),
            identifiers(n),
            time(n.lastSeenTime),
          ]),
        ),
      );
    });

  node
    .command("get <id>")
    .description("show a node")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const n = await ctx.client(cmd).nodes().find(id);
      if (ctx.json(cmd)) return ctx.io.out(messageJson(NodeSchema, n));
      const hw = n.hardware;
      ctx.io.out(
        details([
          ["id", n.id],
          ["cluster", n.clusterSlug],
          ["state", stateNames[n.state] ?? "-"],
          ["slots", `${n.busySlots}/${n.slots} busy`],
          ["host", hostOf(n)],
          ["hostname", orDash(n.hostname)],
          ["hardware", hw ? `${hw.cpuCores} cpu, ${formatMemory(hw.memoryBytes)}, ${hw.gpuCount} gpu ${hw.gpuType}`.trim() : "-"],
          ["tasks", identifiers(n)],
          ["running", runningLines(n, new Date())],
          ["labels", Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(", ") || "-"],
          ["connected", time(n.connectTime)],
          ["last seen", time(n.lastSeenTime)],
        ]),
      );
    });
}
