// The command line of a runner process the agent launches, in one place: which `corral runner
// start` flags a LaunchRunner turns into, and the environment carrying the runner's own key.
import { fileURLToPath } from "node:url";
import type { LaunchSpec } from "./supervisor-state.js";

export interface RunnerCommand {
  command: string;
  args: string[];
  env: Record<string, string>;
}

/** The fd on which a runner started by the agent sees end-of-file when the agent is gone. */
export const parentPipeFd = 3;
export const parentPipeEnv = "CORRAL_PARENT_PIPE_FD";

/** This package's own `corral` executable, run with this Node. */
export function defaultRunnerPrefix(): string[] {
  return [process.execPath, fileURLToPath(new URL("../../bin/corral.js", import.meta.url))];
}

/**
 * CORRAL_AGENT_RUNNER_COMMAND: the program (and leading arguments) to run instead of `corral`,
 * as a JSON array of strings or as words separated by spaces. The runner arguments follow them.
 */
export function parseRunnerPrefix(text: string | undefined): string[] | undefined {
  if (text === undefined || text.trim() === "") return undefined;
  if (text.trim().startsWith("[")) {
    const parsed = JSON.parse(text) as unknown;
    if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((p) => typeof p === "string")) {
      throw new Error("CORRAL_AGENT_RUNNER_COMMAND: a JSON value must be a non-empty array of strings");
    }
    return parsed as string[];
  }
  return text.trim().split(/\s+/);
}

/**
 * What the launched runners serve: "release" runners load the releases deployed to their cluster
 * (`corral runner start` without --tasks) and, while none is deployed, the built-in tasks
 * (`--fallback-builtins`: corral/Echo; corral/RunScript is refused as scripts are not allowed), so a
 * fresh cluster runs something and a deployment takes over without a restart; "builtins" runners
 * serve only the built-in tasks, whatever is deployed.
 */
export type RunnerKindChoice = "release" | "builtins";

/**
 * `corral runner start` for one launch, the one place that turns a LaunchRunner into flags. The
 * registry's launch carries the runner's id, cluster, concurrency and a key scoped to that cluster.
 */
export function runnerCommand(launch: LaunchSpec, prefix: string[], agentUrl: string, kind: RunnerKindChoice = "release"): RunnerCommand {
  const [command, ...lead] = prefix;
  return {
    command: command!,
    args: [
      ...lead,
      "runner",
      "start",
      "--cluster",
      launch.clusterSlug,
      "--runner-id",
      launch.runnerId,
      "--concurrency",
      String(Math.max(1, launch.concurrency)),
      ...(kind === "builtins" ? ["--builtins"] : ["--fallback-builtins"]),
    ],
    env: {
      // The Work stream goes to `url` (the broker, or the one suite URL); deployments and release
      // downloads to the registry, which is where this agent itself connects unless told otherwise.
      CORRAL_URL: launch.url || agentUrl,
      CORRAL_REGISTRY_URL: launch.registryUrl || agentUrl,
      CORRAL_API_KEY: launch.apiKey,
      [parentPipeEnv]: String(parentPipeFd),
    },
  };
}
