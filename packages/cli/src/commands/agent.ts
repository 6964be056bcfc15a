// corral agent: offer this machine's capacity to the registry and run the runners it places here.
import type { Command } from "commander";
import { Code } from "@connectrpc/connect";
import { formatMemory } from "@corral/sdk";
import { Agent, AgentRefusedError } from "../agent/agent.js";
import { parseLabels, resolveCapacity, resolveHostName } from "../agent/capacity.js";
import { defaultRunnerPrefix, parseRunnerPrefix, runnerCommand } from "../agent/runner-command.js";
import { resolveConnection } from "../connection.js";
import { collect, intArg, type CliContext } from "../context.js";

interface AgentFlags {
  name?: string;
  location?: string;
  label: string[];
  cpus?: string;
  memory?: string;
  gpus?: string;
  gpuType?: string;
  stopGrace: number;
  builtinRunners?: boolean;
}

const agentHelp = `
The agent keeps one stream to the registry. The registry places runners of the team's clusters on
hosts with free capacity and tells the agent to launch them: \`corral runner start\` with a key
scoped to the runner's cluster, a release runner loading the cluster's deployed releases (or, with
--builtin-runners, one serving the built-in tasks). A runner that crashes is restarted (backoff 1 s
doubling to 60 s); its output is shipped to the registry (\`corral runner logs <node>\`). On
SIGINT/SIGTERM the runners drain and stop (SIGKILL after --stop-grace), then the agent exits; a
second signal kills them at once. A runner also stops by itself when its agent dies, even by kill -9.
Malformed flags and a key the registry refuses end the agent with exit code 1.`;

export function registerAgentCommands(program: Command, ctx: CliContext): void {
  program
    .command("agent")
    .description("run this machine as a host: launch and supervise the runners the registry places here")
    .option("--name <name>", "host name (default: the hostname)")
    .option("--location <location>", "location id or name")
    .option("--label <key=value>", "a label of the host (repeatable)", collect, [])
    .option("--cpus <n>", "CPUs offered (default: detected)")
    .option("--memory <size>", 'memory offered, e.g. "32GiB" (default: detected)')
    .option("--gpus <n>", "GPUs offered (default: detected from the NVIDIA driver)")
    .option("--gpu-type <type>", "GPU model, e.g. A100")
    .option("--stop-grace <seconds>", "how long runners may drain when stopped", intArg(0, 86_400), 30)
    .option("--builtin-runners", "launch runners serving the built-in tasks (corral/Echo) instead of release runners")
    .addHelpText("after", agentHelp)
    .action(async (o: AgentFlags, cmd: Command) => {
      // Flags first: a malformed one fails before anything connects.
      const capacity = resolveCapacity({ cpus: o.cpus, memory: o.memory, gpus: o.gpus, gpuType: o.gpuType });
      const labels = parseLabels(o.label);
      const name = resolveHostName(o.name);
      const prefix = parseRunnerPrefix(ctx.env.CORRAL_AGENT_RUNNER_COMMAND) ?? defaultRunnerPrefix();
      const g = cmd.optsWithGlobals<{ url?: string; apiKey?: string }>();
      const conn = resolveConnection({ url: g.url, apiKey: g.apiKey }, ctx.env, ctx.cwd);
      const agent = new Agent({
        url: conn.url,
        apiKey: conn.apiKey,
        name,
        capacity,
        location: o.location,
        labels,
        stopGraceMs: o.stopGrace * 1000,
        runnerCommand: (launch) => runnerCommand(launch, prefix, conn.url, o.builtinRunners ? "builtins" : "release"),
        log: (line) => ctx.io.err(`agent: ${line}`),
      });
      ctx.io.err(
        `agent ${name}: ${capacity.cpuCores} cpu, ${formatMemory(capacity.memoryBytes)}, ${capacity.gpuCount} gpu${capacity.gpuType ? ` ${capacity.gpuType}` : ""}${o.location ? ` in ${o.location}` : ""}, registry ${conn.url}`,
      );
      const stop = new AbortController();
      let signals = 0;
      const onSignal = () => {
        if (++signals === 1) {
          ctx.io.err("agent: stopping its runners (again to kill them now)");
          stop.abort();
          return;
        }
        agent.supervisor.killAll();
        process.exit(130);
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      try {
        await agent.run(stop.signal);
        ctx.io.err("agent: stopped");
      } catch (err) {
        if (err instanceof AgentRefusedError && err.code === Code.Unauthenticated) {
          throw new AgentRefusedError(err.code, `${err.rawMessage} (the agent's key from ${conn.source} is unknown or revoked)`);
        }
        throw err;
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    });
}
