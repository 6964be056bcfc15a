// Two replicas of each service as separate processes behind one HTTP/2 balancer (round robin per
// method, as an ingress would spread calls): SDK clients, runners and the services' calls to each
// other are spread over the replicas. A job of thousands of tasks completes while replica 1 of
// every service is stopped (SIGTERM: runners are drained to the other broker and resume their
// leases there) and started again; the restarted replicas take traffic again.
import { createServiceClient } from "@corral/server-kit";
import { DispatchService, JobState } from "@corral/proto";
import type { Client, Runner } from "@corral/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startReplicatedSuite, type ReplicatedSuite } from "./support/replicated-suite.js";
import {
  Phased,
  clientOf,
  executions,
  leavesByPhase,
  openGate,
  phasedTaskCount,
  phasedTasks,
  runnerOptions,
  setPhase,
  startRunner,
  whenExecuted,
} from "./support/workload.js";

async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 20; !(await probe()); delay = Math.min(delay * 2, 250)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

describe("two replicas of every service", () => {
  let suite: ReplicatedSuite;
  let client: Client;
  const runners: Runner[] = [];

  beforeAll(async () => {
    suite = await startReplicatedSuite({ label: "scale-replicas", env: { CORRAL_PRESENCE_INTERVAL: "1s" } });
    client = clientOf(suite.balancer.url, suite.apiKey);
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled(runners.map((r) => r.stop()));
    await suite?.stop();
  }, 60_000);

  /** Sessions per broker replica, asked through the balancer (any replica answers for all). */
  async function sessionsByBroker(): Promise<Record<string, number>> {
    const dispatch = createServiceClient(DispatchService, { baseUrl: suite.balancer.url, apiKey: suite.serviceKey, timeoutMs: 5_000 });
    const { sessions } = await dispatch.listSessions({});
    const out: Record<string, number> = {};
    for (const s of sessions) out[s.brokerId] = (out[s.brokerId] ?? 0) + 1;
    return out;
  }

  it("completes a job of thousands of tasks while replica 1 of each service stops and starts again", { timeout: 180_000 }, async () => {
    const cluster = await client.clusters().create("replicas");
    for (let i = 0; i < 6; i++) {
      const runner = client.runner(runnerOptions(cluster.slug, { tasks: phasedTasks, concurrency: 8 }));
      runners.push(runner);
      await startRunner(runner);
    }
    // Consecutive runner streams alternate between the two brokers.
    expect(await sessionsByBroker()).toEqual({ "broker-1": 3, "broker-2": 3 });

    const leaves = 1_000;
    const chunk = 100;
    const expected = phasedTaskCount(leaves, chunk);
    expect(expected).toBeGreaterThan(3_000);
    const before = executions.size;
    const job = await client.jobs().submit("replicas", new Phased({ leaves, chunk, gates: ["down", "up"] }), { cluster: cluster.slug });
    const finished = client.jobs().wait(job.id);
    finished.catch(() => {});

    // Wave 1 runs on every replica; once it is under way, replica 1 of every service stops.
    await whenExecuted(() => (leavesByPhase.get("initial") ?? 0) >= 300);
    const first = Object.values(suite.replicas).map((r) => r[0]!);
    await Promise.all(first.map((r) => suite.stopReplica(r)));
    setPhase("down");
    openGate("down");

    // Wave 2 can only start now, and runs on the remaining replicas alone.
    await whenExecuted(() => (leavesByPhase.get("down") ?? 0) >= 500);
    // The runners broker-1 drained reconnected to broker-2 (each within its reconnect backoff).
    await waitUntil("every runner on broker-2", async () => JSON.stringify(await sessionsByBroker()) === JSON.stringify({ "broker-2": 6 }));
    const countsBeforeRestart = suite.balancer.counts();
    await Promise.all(first.map((r) => suite.startReplica(r)));
    setPhase("up");

    // New runners are spread over both brokers again; wave 3 starts once they are in.
    for (let i = 0; i < 2; i++) {
      const runner = client.runner(runnerOptions(cluster.slug, { tasks: phasedTasks, concurrency: 8 }));
      runners.push(runner);
      await startRunner(runner);
    }
    expect(await sessionsByBroker()).toEqual({ "broker-1": 1, "broker-2": 7 });
    openGate("up");

    const done = await finished;
    expect(done.state).toBe(JobState.COMPLETED);
    expect(executions.size - before).toBe(expected);
    expect(leavesByPhase.get("down")).toBeGreaterThanOrEqual(500);
    expect(leavesByPhase.get("up") ?? 0).toBeGreaterThan(0);
    const progress = await client.jobs().progress(job.id);
    expect(progress.tasksByState).toMatchObject({ computed: expected, total: expected, failed: 0, queued: 0, running: 0 });

    // Every restarted replica took calls again (job-service results and dispatch, presence, runners).
    const after = suite.balancer.counts();
    for (const r of first) expect(after.get(r.url)! - (countsBeforeRestart.get(r.url) ?? 0), r.name).toBeGreaterThan(0);
  });
});
