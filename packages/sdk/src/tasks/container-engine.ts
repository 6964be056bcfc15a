// environment.docker of corral/RunScript: finding the docker or podman CLI on the runner's PATH,
// checking its engine answers, and the `run` command line (a pure function of the input).
import { UnrecoverableTaskError } from "../errors.js";
import { findOnPath, spawnCommand } from "./run-command.js";

export type ContainerEngine = "docker" | "podman";

export interface ContainerRun {
  image: string;
  /** Working directory inside the container. */
  workdir?: string;
  volumes: string[];
  env: Record<string, string>;
  /** The program and its arguments inside the container. */
  argv: string[];
  /** The container's name (to find it in `docker ps`). */
  name?: string;
}

/**
 * The argv of `<engine> run` for a command: removed when it ends, stdin closed, every value of the
 * input after the option it belongs to and the image after `--`, so no input is read as an option.
 */
export function containerRunArgv(engine: ContainerEngine, run: ContainerRun): string[] {
  const argv = [engine, "run", "--rm"];
  if (run.name !== undefined) argv.push("--name", run.name);
  if (run.workdir !== undefined) argv.push("--workdir", run.workdir);
  for (const v of run.volumes) argv.push("--volume", v);
  for (const [name, value] of Object.entries(run.env)) argv.push("--env", `${name}=${value}`);
  argv.push("--", run.image, ...run.argv);
  return argv;
}

/** The first of docker and podman found on `path` (a PATH value), with where it is; undefined when neither. */
export function findContainerEngine(path: string | undefined): { engine: ContainerEngine; program: string } | undefined {
  for (const engine of ["docker", "podman"] as const) {
    const program = findOnPath(engine, path);
    if (program !== undefined) return { engine, program };
  }
  return undefined;
}

/**
 * The engine to run containers with, checked to answer; throws an UnrecoverableTaskError (another
 * attempt on this runner cannot do better) when neither CLI is on PATH or its engine does not answer.
 */
export async function resolveContainerEngine(env: Record<string, string>, signal: AbortSignal): Promise<{ engine: ContainerEngine; program: string }> {
  const found = findContainerEngine(env.PATH);
  if (!found) {
    throw new UnrecoverableTaskError(
      `corral/RunScript environment.docker needs the docker or podman CLI on this runner's PATH (${env.PATH ?? "unset"}), and neither is there: install one, or run this task on a runner that has one`,
    );
  }
  // `version` asks the engine too: the docker CLI without a daemon answers non-zero at once.
  const probe = await spawnCommand({ argv: [found.program, "version"], env, timeoutMs: 30_000, tailBytes: 2048 }, signal);
  if (probe.exitCode !== 0) {
    const why = probe.stderrTail.trim().split("\n").find((l) => l.trim() !== "") ?? `exit code ${probe.exitCode ?? probe.signal}`;
    throw new UnrecoverableTaskError(
      `corral/RunScript environment.docker: ${found.engine} is on this runner's PATH (${found.program}) but its engine does not answer: ${why}`,
    );
  }
  return found;
}
