// Clusters that provision themselves, end to end with real processes: the three services on their
// own ports, `corral agent` processes as a user starts them, the runners they launch (release
// runners serving the built-in tasks while nothing is deployed), and the CLI and SDK asking for
// clusters. Timings are shortened through the services' environment (host grace, reconcile
// interval, lease duration, stop grace); the idle timeout is a cluster's spec.
import { readFileSync } from "node:fs";
import type { ChildProcess } from "node:child_process";
import { Code } from "@connectrpc/connect";
import { ClusterState, HostedRunnerState, HostState, JobState, TaskState, type Host } from "@corral/proto";
import { ApiError, Echo, type Client } from "@corral/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, spawnCli } from "../support/cli.js";
import { suiteClient } from "../support/clients.js";
import { startSuite, type Suite } from "../support/suite.js";

const LEASE = "3s";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls until `check` holds: the registry's state is the event; no fixed sleeps. */
async function until<T>(check: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function codeOf(p: Promise<unknown>): Promise<Code | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return err instanceof ApiError ? err.code : undefined;
  }
}

describe("clusters that provision themselves (agents, registry, broker, runners)", { timeout: 180_000 }, () => {
  let suite: Suite;
  let client: Client;
  const agents = new Map<string, ChildProcess>();
  const agentLogs = new Map<string, string>();
  let slug = "";
  const registryEnv = () => ({ CORRAL_URL: suite.registry.url, CORRAL_API_KEY: suite.apiKey });

  function startAgent(name: string): void {
    const child = spawnCli(["agent", "--url", suite.registry.url, "--cpus", "4", "--memory", "8GiB", "--gpus", "0", "--name", name, "--stop-grace", "2"], {
      env: { CORRAL_API_KEY: suite.apiKey },
    });
    agents.set(name, child);
    agentLogs.set(name, "");
    child.stderr!.on("data", (d: Buffer) => agentLogs.set(name, agentLogs.get(name)! + d.toString()));
  }

  async function hosts(): Promise<Host[]> {
    return client.hosts().all();
  }

  /** Every runner process the agents report, by runner id. */
  async function runnerPids(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const h of await hosts()) for (const r of h.runners) if (r.pid > 0 && r.state === HostedRunnerState.RUNNING) out.set(r.runnerId, r.pid);
    return out;
  }

  async function cluster() {
    return client.clusters().find(slug);
  }

  async function untilState(state: ClusterState, what: string, timeoutMs?: number) {
    return until(async () => {
      const c = await cluster();
      return c.state === state && c;
    }, what, timeoutMs);
  }

  async function echo(message: string, delayMs = 0) {
    const job = await client.jobs().submit(`e2e ${message}`, new Echo({ message, delayMs }), { cluster: slug });
    return job;
  }

  beforeAll(async () => {
    suite = await startSuite({
      label: "e2e-provisioning",
      env: {
        CORRAL_HOST_GRACE: "3s",
        CORRAL_RECONCILE_INTERVAL: "500ms",
        CORRAL_RUNNER_STOP_GRACE: "2s",
        CORRAL_LEASE_DURATION: LEASE,
        CORRAL_PRESENCE_INTERVAL: "2s",
      },
    });
    client = suiteClient(suite);
    startAgent("h1");
    startAgent("h2");
    await until(async () => (await hosts()).filter((h) => h.state === HostState.ONLINE).length === 2, "two hosts online");
  });

  afterAll(async () => {
    // SIGTERM: each agent drains and stops its runners, then exits.
    await Promise.all(
      [...agents.values()].map(
        (a) =>
          new Promise<void>((resolve) => {
            if (a.exitCode !== null || a.signalCode !== null) return resolve();
            const t = setTimeout(() => a.kill("SIGKILL"), 15_000);
            a.once("close", () => {
              clearTimeout(t);
              resolve();
            });
            a.kill("SIGTERM");
          }),
      ),
    );
    await suite?.stop();
  });

  it("cluster create --runners 3 --wait is READY with runners on both hosts, and a job of the built-in tasks completes on them", async () => {
    const created = await runCli(["--json", "cluster", "create", "etl", "--runners", "3", "--cpus", "2", "--memory", "1GiB", "--wait", "--timeout", "120"], {
      env: registryEnv(),
      timeoutMs: 150_000,
    });
    expect(created.code, created.stderr + [...agentLogs.values()].join("\n")).toBe(0);
    const c = JSON.parse(created.stdout) as { slug: string; state: string; runningRunners: number; desiredRunners: number };
    slug = c.slug;
    expect(c).toMatchObject({ state: "CLUSTER_STATE_READY", runningRunners: 3, desiredRunners: 3 });
    const placed = (await hosts()).map((h) => h.runners.filter((r) => r.clusterSlug === slug).length).sort();
    expect(placed).toEqual([1, 2]);
    // READY counts runners the broker has connected: their nodes are ONLINE in the cluster.
    const nodes = await client.nodes().all({ cluster: slug, state: "online" });
    expect(nodes.map((n) => n.id).sort()).toEqual([...(await runnerPids()).keys()].sort());
    // Each node names the agent host that launched it.
    const hostOf = new Map((await hosts()).flatMap((h) => h.runners.map((r) => [r.runnerId, { id: h.id, name: h.name }] as const)));
    expect(nodes.every((n) => n.hostName !== "" && n.hostId !== "")).toBe(true);
    expect(nodes.map((n) => [n.id, n.hostId, n.hostName])).toEqual(nodes.map((n) => [n.id, hostOf.get(n.id)?.id, hostOf.get(n.id)?.name]));

    const job = await echo("hello");
    const done = await client.jobs().wait(job.id, { signal: AbortSignal.timeout(90_000) });
    expect(done.state).toBe(JobState.COMPLETED);
  });

  it("a runner's own key may work on its cluster only: submitting a job or reading another cluster is PERMISSION_DENIED", async () => {
    const [pid] = [...(await runnerPids()).values()];
    const environ = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
    const key = environ.find((e) => e.startsWith("CORRAL_API_KEY="))!.slice("CORRAL_API_KEY=".length);
    expect(key).toMatch(/^corral_/);
    expect(key).not.toBe(suite.apiKey);
    const asRunner = suiteClient(suite, key);
    const other = await client.clusters().create("someone else's");
    expect(await codeOf(asRunner.jobs().submit("sneaky", new Echo({ message: "x" }), { cluster: slug }))).toBe(Code.PermissionDenied);
    expect(await codeOf(asRunner.clusters().find(other.slug))).toBe(Code.PermissionDenied);
    expect(await codeOf(asRunner.clusters().find(slug))).toBe(Code.PermissionDenied);
  });

  it("scaled to 5 it is DEGRADED with the reason; a third agent makes it READY", async () => {
    const scaled = await runCli(["cluster", "scale", slug, "5"], { env: registryEnv() });
    expect(scaled.code, scaled.stderr).toBe(0);
    const degraded = await untilState(ClusterState.DEGRADED, "DEGRADED");
    expect(degraded.stateReason).toBe("4 of 5 runners placed: no host has 2 free CPUs");
    startAgent("h3");
    const ready = await untilState(ClusterState.READY, "READY on three hosts", 90_000);
    expect(ready.runningRunners).toBe(5);
    expect((await hosts()).every((h) => h.runners.length > 0)).toBe(true);
  });

  it("a runner killed with SIGKILL is restarted by its agent and the task it held is delivered again once its lease expires", async () => {
    const job = await echo("held", 4_000);
    const task = await until(async () => {
      const [t] = await client.jobs().tasks(job.id);
      return t?.state === TaskState.RUNNING && t.runnerId !== "" && t;
    }, "the task running");
    const pid = (await runnerPids()).get(task.runnerId)!;
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, "SIGKILL");
    const restarted = await until(async () => {
      for (const h of await hosts()) {
        const r = h.runners.find((x) => x.runnerId === task.runnerId);
        if (r && r.state === HostedRunnerState.RUNNING && r.pid !== pid && r.restarts >= 1) return r;
      }
      return undefined;
    }, "the runner restarted by its agent");
    expect(restarted.lastExit).toBe("signal SIGKILL");
    const done = await client.jobs().wait(job.id, { signal: AbortSignal.timeout(90_000) });
    expect(done.state).toBe(JobState.COMPLETED);
    const [after] = await client.jobs().tasks(job.id);
    expect(after!.leaseExpiryCount).toBeGreaterThanOrEqual(1);
    expect(after!.attempt).toBeGreaterThanOrEqual(2);
    await untilState(ClusterState.READY, "READY again");
  });

  it("an agent killed with its runners has them placed on the other hosts after the grace period", async () => {
    // 4 runners of 2 CPUs fit on any two of the three 4-CPU hosts.
    const scaled = await runCli(["cluster", "scale", slug, "4", "--wait", "--timeout", "90"], { env: registryEnv(), timeoutMs: 120_000 });
    expect(scaled.code, scaled.stderr).toBe(0);
    const victim = (await hosts()).find((h) => h.runners.length > 0 && h.name !== "h1")!;
    const doomed = victim.runners.map((r) => r.pid);
    agents.get(victim.name)!.kill("SIGKILL");
    for (const pid of doomed) {
      try {
        process.kill(pid, "SIGKILL");
      } catch (err) {
        // Already gone: runners also stop by themselves once their agent's pipe closes.
        if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
      }
    }
    await until(async () => (await hosts()).find((h) => h.id === victim.id)?.state === HostState.OFFLINE, "the host OFFLINE");
    const ready = await untilState(ClusterState.READY, "READY on the other hosts", 90_000);
    expect(ready.runningRunners).toBe(4);
    const survivors = (await hosts()).filter((h) => h.id !== victim.id);
    expect(survivors.map((h) => h.runners.filter((r) => r.clusterSlug === slug).length)).toEqual([2, 2]);
    expect(doomed.some(alive)).toBe(false);
    const job = await echo("after the loss");
    expect((await client.jobs().wait(job.id, { signal: AbortSignal.timeout(90_000) })).state).toBe(JobState.COMPLETED);
  });

  it("idle past its timeout it is STOPPED with no runner process left; a submitted job wakes it and completes", async () => {
    const before = [...(await runnerPids()).values()];
    expect(before).toHaveLength(4);
    const updated = await runCli(["cluster", "update", slug, "--idle-timeout", "3"], { env: registryEnv() });
    expect(updated.code, updated.stderr).toBe(0);
    const stopped = await untilState(ClusterState.STOPPED, "STOPPED when idle");
    expect(stopped.desiredRunners).toBe(0);
    await until(() => before.every((pid) => !alive(pid)), "every runner process gone", 30_000);
    expect((await hosts()).flatMap((h) => h.runners)).toEqual([]);

    const job = await echo("wake up");
    expect((await client.jobs().wait(job.id, { signal: AbortSignal.timeout(90_000) })).state).toBe(JobState.COMPLETED);
    const woken = await cluster();
    expect([ClusterState.READY, ClusterState.PROVISIONING]).toContain(woken.state);
  });
});
