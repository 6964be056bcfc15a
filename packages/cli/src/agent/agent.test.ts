// The agent against a HostService served over real HTTP/2, supervising real child processes (a
// tiny node script stands in for `corral runner start`).
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { CapacitySchema, HostedRunnerState } from "@corral/proto";
import { Agent, AgentRefusedError } from "./agent.js";
import { runnerCommand } from "./runner-command.js";
import { agentKey, fakeRunnerPath, lastState, startHostServiceDouble, type HostServiceDouble } from "./testing/host-service-double.js";

let registry: HostServiceDouble;
const running: Array<{ agent: Agent; stop: AbortController; done: Promise<void> }> = [];

beforeAll(async () => {
  registry = await startHostServiceDouble();
});

afterEach(async () => {
  for (const r of running.splice(0)) {
    r.stop.abort();
    await r.done.catch(() => undefined);
  }
});

afterAll(async () => {
  await registry.close();
});

function startAgent(options: { apiKey?: string; name?: string; stopGraceMs?: number } = {}) {
  const agent = new Agent({
    url: registry.url,
    apiKey: options.apiKey ?? agentKey,
    name: options.name ?? "test-host",
    capacity: create(CapacitySchema, { cpuCores: 4, memoryBytes: 8n * 1024n ** 3n }),
    labels: { rack: "r1" },
    runnerCommand: (launch) => runnerCommand(launch, [process.execPath, fakeRunnerPath], registry.url, "builtins"),
    stopGraceMs: options.stopGraceMs ?? 5000,
    restartBackoff: { baseMs: 50, maxMs: 400 },
    reconnect: { baseDelayMs: 20, maxDelayMs: 200 },
    logShipIntervalMs: 50,
  });
  const stop = new AbortController();
  const done = agent.run(stop.signal);
  done.catch(() => undefined); // a test that expects the rejection awaits done itself
  const handle = { agent, stop, done };
  running.push(handle);
  return handle;
}

/** Waits until the runner printed its "up" line (its SIGTERM handler is installed by then). */
async function up(runnerId: string) {
  await registry.until(() => (registry.logText(runnerId).includes(`fake runner ${runnerId} up`) ? true : undefined), `${runnerId} up`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The newest stream whose hello names `name`. */
async function streamOf(name: string) {
  return registry.until(
    () => [...registry.streams].reverse().find((s) => s.received[0]?.message.case === "hello" && s.received[0].message.value.name === name && !s.ended),
    `a stream from ${name}`,
  );
}

function launch(stream: Awaited<ReturnType<typeof streamOf>>, runnerId: string, clusterSlug = "testing-AAAA") {
  stream.send({
    case: "launch",
    value: { runnerId, clusterId: "c-1", clusterSlug, apiKey: "corral_runner_scoped_key", url: registry.url, concurrency: 2 },
  });
}

describe("corral agent", () => {
  it("says hello with its capacity and labels, and heartbeats", async () => {
    startAgent({ name: "hello-host" });
    const stream = await streamOf("hello-host");
    const hello = stream.received[0]!.message;
    expect(hello.case === "hello" && hello.value).toMatchObject({ capacity: { cpuCores: 4, memoryBytes: 8n * 1024n ** 3n }, labels: { rack: "r1" }, runningRunnerIds: [] });
    await registry.until(() => (stream.received.some((r) => r.message.case === "heartbeat") ? true : undefined), "a heartbeat");
  });

  it("launches a runner process, reports it RUNNING with its pid, and ships its output", async () => {
    startAgent({ name: "launch-host" });
    const stream = await streamOf("launch-host");
    launch(stream, "run-1");
    const runningState = await registry.until(() => lastState(registry, "run-1", HostedRunnerState.RUNNING), "run-1 RUNNING");
    expect(registry.states("run-1")[0]!.state).toBe(HostedRunnerState.STARTING);
    expect(runningState.pid).toBeGreaterThan(0);
    expect(alive(runningState.pid)).toBe(true);
    await registry.until(() => (registry.logText("run-1").includes("key set") ? true : undefined), "run-1's stderr");
    const text = registry.logText("run-1");
    expect(text).toContain("stdout: fake runner run-1 up: cluster testing-AAAA, concurrency 2, builtins true");
    expect(text).toContain(`stderr: fake runner run-1 key set, url ${registry.url}`);
  });

  it("restarts a runner killed by SIGKILL after a backoff and reports the restart and the exit", async () => {
    startAgent({ name: "crash-host" });
    const stream = await streamOf("crash-host");
    launch(stream, "crash-1");
    const first = await registry.until(() => lastState(registry, "crash-1", HostedRunnerState.RUNNING), "crash-1 RUNNING");
    process.kill(first.pid, "SIGKILL");
    const restarting = await registry.until(() => lastState(registry, "crash-1", HostedRunnerState.RESTARTING), "crash-1 RESTARTING");
    expect(restarting.lastExit).toBe("signal SIGKILL");
    const again = await registry.until(() => {
      const s = lastState(registry, "crash-1", HostedRunnerState.RUNNING);
      return s && s.restarts === 1 ? s : undefined;
    }, "crash-1 RUNNING again");
    expect(again.pid).not.toBe(first.pid);
    expect(alive(again.pid)).toBe(true);
    expect(again.lastExit).toBe("signal SIGKILL");
  });

  it("stops a runner with SIGTERM: STOPPING, then STOPPED once it exits, and the process is gone", async () => {
    startAgent({ name: "stop-host" });
    const stream = await streamOf("stop-host");
    launch(stream, "stop-1");
    const r = await registry.until(() => lastState(registry, "stop-1", HostedRunnerState.RUNNING), "stop-1 RUNNING");
    await up("stop-1");
    stream.send({ case: "stop", value: { runnerId: "stop-1", grace: durationFromMs(5000) } });
    const stopped = await registry.until(() => lastState(registry, "stop-1", HostedRunnerState.STOPPED), "stop-1 STOPPED");
    expect(registry.states("stop-1").map((s) => s.state)).toContain(HostedRunnerState.STOPPING);
    expect(stopped.lastExit).toBe("exit code 0");
    expect(alive(r.pid)).toBe(false);
    await registry.until(() => (registry.logText("stop-1").includes("draining") ? true : undefined), "stop-1's drain line");
  });

  it("kills a runner that does not exit within the stop grace", async () => {
    startAgent({ name: "grace-host" });
    const stream = await streamOf("grace-host");
    launch(stream, "stubborn-1", "ignores-term");
    await registry.until(() => lastState(registry, "stubborn-1", HostedRunnerState.RUNNING), "stubborn-1 RUNNING");
    await up("stubborn-1");
    stream.send({ case: "stop", value: { runnerId: "stubborn-1", grace: durationFromMs(200) } });
    const stopped = await registry.until(() => lastState(registry, "stubborn-1", HostedRunnerState.STOPPED), "stubborn-1 STOPPED");
    expect(stopped.lastExit).toBe("signal SIGKILL");
  });

  it("stops every runner when the agent stops, tells the registry, and leaves no process", async () => {
    const a = startAgent({ name: "shutdown-host" });
    const stream = await streamOf("shutdown-host");
    launch(stream, "down-1");
    launch(stream, "down-2");
    const pids = [
      (await registry.until(() => lastState(registry, "down-1", HostedRunnerState.RUNNING), "down-1 RUNNING")).pid,
      (await registry.until(() => lastState(registry, "down-2", HostedRunnerState.RUNNING), "down-2 RUNNING")).pid,
    ];
    a.stop.abort();
    await a.done;
    expect(pids.filter(alive)).toEqual([]);
    expect(lastState(registry, "down-1", HostedRunnerState.STOPPED)).toBeDefined();
    expect(lastState(registry, "down-2", HostedRunnerState.STOPPED)).toBeDefined();
  });

  it("reconnects after the stream fails, naming the runners it still supervises, and keeps them", async () => {
    startAgent({ name: "reconnect-host" });
    const first = await streamOf("reconnect-host");
    launch(first, "keep-1");
    const before = await registry.until(() => lastState(registry, "keep-1", HostedRunnerState.RUNNING), "keep-1 RUNNING");
    first.fail(Code.Unavailable);
    const second = await registry.until(
      () => registry.streams.find((s) => s !== first && s.received[0]?.message.case === "hello" && s.received[0].message.value.name === "reconnect-host"),
      "a second stream",
    );
    const hello = second.received[0]!.message;
    expect(hello.case === "hello" && hello.value.runningRunnerIds).toEqual(["keep-1"]);
    // After the welcome the agent re-sends the runner's state on the new stream.
    await registry.until(
      () => (second.received.some((r) => r.message.case === "runnerState" && r.message.value.runnerId === "keep-1") ? true : undefined),
      "keep-1's state on the new stream",
    );
    expect(alive(before.pid)).toBe(true);
    expect(lastState(registry, "keep-1", HostedRunnerState.RUNNING)?.pid).toBe(before.pid);
  });

  it("gives up with UNAUTHENTICATED when its key is unknown or revoked", async () => {
    const a = startAgent({ apiKey: "corral_revoked1_0123456789abcdef0123", name: "revoked-host" });
    const err = await a.done.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AgentRefusedError);
    expect((err as AgentRefusedError).code).toBe(Code.Unauthenticated);
  });
});
