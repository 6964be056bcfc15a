// corral gateway: a runner that executes the team's routes by calling their HTTP endpoints.
import type { Command } from "commander";
import { AllowListError, Client, createSdkLogger, type LogFormat } from "@corral/sdk";
import { collectPairs, durationArg, intArg, type CliContext } from "../context.js";
import { UsageError } from "../exit-codes.js";
import { createStopSignals } from "./runner.js";

/** Commander parser for a comma-separated list (repeatable). */
function commaList(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(",").map((v) => v.trim()).filter((v) => v !== "")];
}

const allowHelp = `
The gateway calls only the hosts --allow names (an empty list refuses every route):
  api.example.com        that host, any port        api.example.com:8443   that host and port
  *.example.com          any host under the domain  *                      any public host
  10.0.0.5:8080          that address (and port)    10.0.0.0/8, [fd00::]:80   an address range
Every address a route's host resolves to is checked: loopback, private and link-local addresses
(127.0.0.0/8, 10/8, 172.16/12, 192.168/16, 169.254/16, ::1, fc00::/7, fe80::/10, ...) are refused,
whatever name led there, unless an address entry covers them. Redirects are never followed.`;

export function registerGatewayCommands(program: Command, ctx: CliContext): void {
  program
    .command("gateway")
    .description("run a gateway on a cluster: execute the team's routes (corral route) by calling their HTTP endpoints, until SIGTERM")
    .option("-c, --cluster <slug>", "cluster (default: the team's default cluster)")
    .option("--allow <hosts>", "hosts the gateway may call, comma-separated (repeatable; see below)", commaList, [])
    .option("--concurrency <n>", "calls under way at once", intArg(1, 10000), 16)
    .option("--refresh <duration>", 'how often the routes are listed again, e.g. "5s"', durationArg, 5_000)
    .option("--runner-id <id>", "this gateway's node id (default: hostname, pid and a random suffix)")
    .option("--label <key=value>", "a label shown on the node (repeatable)", collectPairs, {})
    .option("--drain-grace <seconds>", "how long calls under way may finish on SIGTERM", intArg(0), 30)
    .option("--log-format <format>", "pretty (plain lines) or json (default: pretty on a terminal, json when piped)")
    .addHelpText("after", allowHelp)
    .action(
      async (
        o: { cluster?: string; allow: string[]; concurrency: number; refresh: number; runnerId?: string; label: Record<string, string>; drainGrace: number; logFormat?: string },
        cmd: Command,
      ) => {
        if (o.logFormat !== undefined && o.logFormat !== "pretty" && o.logFormat !== "json") {
          throw new UsageError(`unknown --log-format ${JSON.stringify(o.logFormat)}: use pretty or json`);
        }
        if (o.refresh < 100) throw new UsageError("--refresh must be at least 100ms");
        const format: LogFormat = (o.logFormat as LogFormat | undefined) ?? (process.stdout.isTTY ? "pretty" : "json");
        const logger = createSdkLogger("corral-gateway", ctx.env.CORRAL_LOG_LEVEL ?? "info", { format });
        // CORRAL_REGISTRY_URL: the registry when CORRAL_URL routes only the broker (services on
        // their own ports, no ingress in front).
        const registryUrl = ctx.env.CORRAL_REGISTRY_URL;
        const client = ctx.client(cmd);
        let gateway;
        try {
          gateway = client.gateway({
            ...(registryUrl ? { apiTransport: new Client({ url: registryUrl, apiKey: client.apiKey }).transport } : {}),
            cluster: o.cluster,
            allow: o.allow,
            concurrency: o.concurrency,
            refreshMs: o.refresh,
            runnerId: o.runnerId,
            labels: o.label,
            drainGraceMs: o.drainGrace * 1000,
            logger,
          });
        } catch (err) {
          if (err instanceof AllowListError) throw new UsageError(err.message);
          throw err;
        }
        ctx.io.err(
          `gateway ${gateway.id}: the team's routes on ${o.cluster || "the default cluster"}, concurrency ${o.concurrency}, ` +
            (o.allow.length === 0 ? "no host allowed (--allow): every route is refused" : `allowed: ${o.allow.join(", ")}`),
        );
        const onSignal = createStopSignals(gateway.runner, o.drainGrace, (line) => ctx.io.err(line));
        const onInt = () => onSignal("SIGINT");
        const onTerm = () => onSignal("SIGTERM");
        process.on("SIGINT", onInt);
        process.on("SIGTERM", onTerm);
        try {
          await gateway.runForever({ handleSignals: false });
        } finally {
          process.off("SIGINT", onInt);
          process.off("SIGTERM", onTerm);
        }
      },
    );
}
