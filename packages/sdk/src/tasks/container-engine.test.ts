import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UnrecoverableTaskError } from "../errors.js";
import { containerRunArgv, findContainerEngine, resolveContainerEngine } from "./container-engine.js";
import { findOnPath } from "./run-command.js";

const dir = mkdtempSync(join(tmpdir(), "corral-engine-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A folder holding executable files of these names (what a PATH lookup finds; never run). */
function binDir(name: string, programs: string[]): string {
  const bin = join(dir, name);
  mkdirSync(bin);
  for (const program of programs) {
    writeFileSync(join(bin, program), "");
    chmodSync(join(bin, program), 0o755);
  }
  return bin;
}

describe("the container command line", () => {
  it("puts every input value after its option and the image after --", () => {
    expect(
      containerRunArgv("docker", {
        image: "python:3.12",
        workdir: "/work",
        volumes: ["/srv/data:/data:ro", "cache:/root/.cache"],
        env: { MODE: "fast", ODD: "a b --rm=x" },
        argv: ["/bin/sh", "-c", "python -V | tee /data/v"],
        name: "corral-t1-1",
      }),
    ).toEqual([
      "docker",
      "run",
      "--rm",
      "--name",
      "corral-t1-1",
      "--workdir",
      "/work",
      "--volume",
      "/srv/data:/data:ro",
      "--volume",
      "cache:/root/.cache",
      "--env",
      "MODE=fast",
      "--env",
      "ODD=a b --rm=x",
      "--",
      "python:3.12",
      "/bin/sh",
      "-c",
      "python -V | tee /data/v",
    ]);
  });

  it("is the same for podman, with only what was given", () => {
    expect(containerRunArgv("podman", { image: "alpine", volumes: [], env: {}, argv: ["ls", "-la"] })).toEqual([
      "podman",
      "run",
      "--rm",
      "--",
      "alpine",
      "ls",
      "-la",
    ]);
  });
});

describe("finding a container engine", () => {
  it("prefers docker, takes podman, and finds neither on a PATH without them", () => {
    const both = binDir("both", ["docker", "podman"]);
    const podmanOnly = binDir("podman-only", ["podman"]);
    const none = binDir("none", ["git"]);
    // A folder named docker is not the program.
    mkdirSync(join(none, "docker"));
    expect(findContainerEngine(`${none}:${both}`)).toEqual({ engine: "docker", program: join(both, "docker") });
    expect(findContainerEngine(`${none}:${podmanOnly}`)).toEqual({ engine: "podman", program: join(podmanOnly, "podman") });
    expect(findContainerEngine(none)).toBeUndefined();
    expect(findContainerEngine(undefined)).toBeUndefined();
  });

  it("fails, not to be retried, when neither CLI is on PATH", async () => {
    const none = join(dir, "none");
    const err = await resolveContainerEngine({ PATH: none }, new AbortController().signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnrecoverableTaskError);
    expect((err as Error).message).toBe(
      `corral/RunScript environment.docker needs the docker or podman CLI on this runner's PATH (${none}), and neither is there: install one, or run this task on a runner that has one`,
    );
  });

  // This machine's real docker CLI, which has no engine to talk to.
  const dockerCli = findOnPath("docker", process.env.PATH);
  it.runIf(dockerCli !== undefined)("fails, not to be retried, when the CLI is there but its engine does not answer", async () => {
    const bin = join(dir, "real-docker");
    mkdirSync(bin);
    symlinkSync(dockerCli!, join(bin, "docker"));
    // No DOCKER_HOST: the CLI asks the default socket, where no engine listens here.
    const err = await resolveContainerEngine({ PATH: bin, HOME: dir }, new AbortController().signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnrecoverableTaskError);
    expect((err as Error).message).toContain(`docker is on this runner's PATH (${join(bin, "docker")}) but its engine does not answer: `);
    expect((err as Error).message).toMatch(/daemon/i);
  });
});
