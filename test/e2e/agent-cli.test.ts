// `corral agent` as a user runs it, in its own process: malformed capacity flags and a revoked key
// end it with exit code 1 and a message; kill -9 of the agent takes its runner processes with it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HostedRunnerState } from "@corral/proto";
import { runCli, spawnCli } from "../support/cli.js";
import {
  agentKey,
  fakeRunnerPath,
  lastState,
  startHostServiceDouble,
  type HostServiceDouble,
} from "../../packages/cli/src/agent/testing/host-service-double.js";

let registry: HostServiceDouble;

beforeAll(async () => {
  registry = await startHostServiceDouble();
});

afterAll(async () => {
  await registry.close();
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves once `pid` is gone (polled: a process that is not our child sends no event). */
async function gone(pid: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() > deadline) throw new Error(`process ${pid} still alive after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("corral agent (CLI)", () => {
  it.each([
    [["--memory", "32XB"], "--memory"],
    [["--cpus", "-1"], "--cpus"],
    [["--cpus", "abc"], "--cpus"],
  ])("refuses %j with a message naming %s and exit code 1", async (flags, flag) => {
    const r = await runCli(["agent", "--url", registry.url, "--api-key", agentKey, ...flags]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: ${flag}:`);
  });

  it("exits 1 with UNAUTHENTICATED when its key is revoked or unknown", async () => {
    const r = await runCli(["agent", "--url", registry.url, "--api-key", "corral_revoked1_0123456789abcdef0123", "--cpus", "2", "--memory", "4GiB", "--name", "revoked"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refused this agent: .*\[Unauthenticated\]/);
    expect(r.stderr).toContain("unknown or revoked");
  });

  it("takes its runner processes with it when killed with SIGKILL", async () => {
    const agent = spawnCli(
      ["agent", "--url", registry.url, "--cpus", "4", "--memory", "8GiB", "--gpus", "0", "--name", "doomed", "--label", "zone=a"],
      { env: { CORRAL_API_KEY: agentKey, CORRAL_AGENT_RUNNER_COMMAND: JSON.stringify([process.execPath, fakeRunnerPath]) } },
    );
    let err = "";
    agent.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    try {
      const stream = await registry.until(
        () => registry.streams.find((s) => s.received[0]?.message.case === "hello" && s.received[0].message.value.name === "doomed"),
        "the agent's stream",
        60_000,
      );
      const hello = stream.received[0]!.message;
      expect(hello.case === "hello" && hello.value).toMatchObject({ capacity: { cpuCores: 4, memoryBytes: 8n * 1024n ** 3n, gpuCount: 0 }, labels: { zone: "a" } });
      for (const id of ["orphan-1", "orphan-2"]) {
        stream.send({
          case: "launch",
          value: { runnerId: id, clusterId: "c-1", clusterSlug: "testing-AAAA", apiKey: "corral_scoped1_0123456789abcdef0123", url: registry.url, concurrency: 1 },
        });
      }
      const pids = await Promise.all(
        ["orphan-1", "orphan-2"].map(async (id) => (await registry.until(() => lastState(registry, id, HostedRunnerState.RUNNING), `${id} RUNNING`)).pid),
      );
      expect(pids.every(alive)).toBe(true);
      agent.kill("SIGKILL");
      await Promise.all(pids.map((pid) => gone(pid)));
    } finally {
      agent.kill("SIGKILL");
    }
    expect(err).toContain("agent doomed: 4 cpu, 8 GiB, 0 gpu");
  });
});
