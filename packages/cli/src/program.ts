// The `corral` command tree. Commands only parse flags, call the SDK and print.
import { Command } from "commander";
import { createCliContext, type CliContextOptions } from "./context.js";
import { registerAgentCommands } from "./commands/agent.js";
import { registerAutomationCommands } from "./commands/automation.js";
import { registerClusterCommands } from "./commands/cluster.js";
import { registerConfigCommands } from "./commands/config.js";
import { registerGatewayCommands } from "./commands/gateway.js";
import { registerHardwareCommands } from "./commands/hardware.js";
import { registerHostCommands } from "./commands/host.js";
import { registerJobCommands } from "./commands/job.js";
import { registerKeyCommands } from "./commands/key.js";
import { registerLocationCommands } from "./commands/location.js";
import { registerNodeCommands } from "./commands/node.js";
import { registerReleaseCommands } from "./commands/release.js";
import { registerRouteCommands } from "./commands/route.js";
import { registerRunnerCommands } from "./commands/runner.js";
import { registerRuntimeCommands } from "./commands/runtime.js";
import { sdkVersion } from "@corral/sdk";
import type { CliContext } from "./context.js";

/** Adds more commands (dev, migrate, serve) to the tree. */
export type CommandRegistrar = (program: Command, ctx: CliContext) => void;

export function createProgram(options: CliContextOptions & { extraCommands?: CommandRegistrar[] }): Command {
  const ctx = createCliContext(options);
  const program = new Command("corral")
    .description("Corral: clusters of runners, jobs as task graphs")
    .version(sdkVersion)
    .option("--url <url>", "server URL (env CORRAL_URL; default http://127.0.0.1:7700)")
    .option("--api-key <key>", "API key (env CORRAL_API_KEY, or .corral/credentials.json)")
    .option("--json", "print JSON instead of tables")
    .showHelpAfterError()
    .configureOutput({
      writeOut: (s) => options.io.out(s.replace(/\n$/, "")),
      writeErr: (s) => options.io.err(s.replace(/\n$/, "")),
    });
  for (const register of [
    registerClusterCommands,
    registerJobCommands,
    registerAutomationCommands,
    registerRunnerCommands,
    registerNodeCommands,
    registerReleaseCommands,
    registerRouteCommands,
    registerGatewayCommands,
    registerLocationCommands,
    registerHardwareCommands,
    registerConfigCommands,
    registerKeyCommands,
    registerAgentCommands,
    registerHostCommands,
    registerRuntimeCommands,
    ...(options.extraCommands ?? []),
  ]) {
    register(program, ctx);
  }
  // Throw instead of exiting, everywhere, so main() picks the exit code.
  const override = (cmd: Command) => {
    cmd.exitOverride();
    cmd.commands.forEach(override);
  };
  override(program);
  return program;
}
