// corral runtime: what the suite the CLI talks to is and allows (GetRuntimeConfig), and where the
// CLI's URL and key came from.
import type { Command } from "commander";
import { GetRuntimeConfigResponseSchema, type GetRuntimeConfigResponse } from "@corral/proto";
import { formatMemory } from "@corral/sdk";
import type { CliContext } from "../context.js";
import { details, duration, messageJson, orDash } from "../output.js";

/** The config as label/value pairs, grouped the way the proto groups them. */
export function runtimeRows(c: GetRuntimeConfigResponse): Array<[string, string]> {
  const l = c.limits;
  const lease = c.lease;
  const p = c.provisioning;
  return [
    ["server version", orDash(c.serverVersion)],
    ["public endpoint", orDash(c.publicEndpoint)],
    ["services", c.services.length ? c.services.join(", ") : "-"],
    ["max task input", l ? formatMemory(Number(l.maxTaskInputBytes)) : "-"],
    ["max tasks per submission", orDash(l?.maxTasksPerSubmission)],
    ["max subtasks per result", orDash(l?.maxSubtasksPerResult)],
    ["max display", l ? formatMemory(l.maxDisplayBytes) : "-"],
    ["max progress indicators", orDash(l?.maxProgressIndicators)],
    ["max message", l ? formatMemory(l.maxMessageBytes) : "-"],
    ["lease duration", duration(lease?.leaseDuration)],
    ["heartbeat interval", duration(lease?.heartbeatInterval)],
    ["max lease expiries", orDash(lease?.maxLeaseExpiries)],
    ["host grace", duration(p?.hostGrace)],
    ["agent heartbeat", duration(p?.agentHeartbeatInterval)],
    ["reconcile interval", duration(p?.reconcileInterval)],
    ["runner stop grace", duration(p?.runnerStopGrace)],
  ];
}

export function registerRuntimeCommands(program: Command, ctx: CliContext): void {
  program
    .command("runtime")
    .description("show what the suite allows and uses: version, limits, lease and provisioning settings")
    .action(async (_o: unknown, cmd: Command) => {
      const config = await ctx.client(cmd).runtime().config();
      if (ctx.json(cmd)) return ctx.io.out(messageJson(GetRuntimeConfigResponseSchema, config));
      const c = ctx.connection(cmd);
      ctx.io.out(
        details([
          ["url", `${c.url} (from ${c.urlSource})`],
          ["api key", c.keyId ? `${c.keyId} (from ${c.source})` : c.apiKey ? `from ${c.source}` : "none"],
          ...runtimeRows(config),
        ]),
      );
    });
}
