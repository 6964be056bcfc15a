import { Code, ConnectError } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import {
  ApiKeyScope,
  ApiKeyService,
  ClusterService,
  ClusterState,
  HostService,
  HostState,
  HostedRunnerState,
  NodeSchema,
  NodeService,
  PresenceEvent,
  RuntimeService,
  type LaunchRunner,
} from "@corral/proto";
import { createLogger, createServer, createServiceClient } from "@corral/server-kit";
import { TEST_SERVICE_KEY } from "@corral/server-kit/testing";
import { afterEach, describe, expect, it } from "vitest";
import { createRegistry } from "../registry.js";
import { codeOf, startRegistryHarness, type RegistryHarness } from "../test-harness.js";
import { eventually, FakeAgent, type FakeAgentOptions } from "./fake-agent.js";
import type { ClusterWork } from "./work-source.js";

const GIB = 1024n ** 3n;
const FAST = { reconcileIntervalMs: 100, hostGraceMs: 1_500, agentHeartbeatMs: 100 };

describe("provisioning", () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  async function harness(label: string, work?: Map<string, ClusterWork>): Promise<RegistryHarness> {
    const h = await startRegistryHarness(label, {
      provisioning: { ...FAST, ...(work ? { workSource: async () => work } : {}) },
    });
    cleanup.push(() => h.close());
    return h;
  }

  /** A broker's presence report for a launched runner: its node is ONLINE. */
  function brokerSees(h: RegistryHarness, teamId: string) {
    return async (l: LaunchRunner) => {
      const node = create(NodeSchema, { id: l.runnerId, sessionId: `s-${l.runnerId}`, clusterId: l.clusterId, clusterSlug: l.clusterSlug, slots: l.concurrency, brokerId: "broker-1" });
      await h.serviceClient(NodeService).reportPresence({ reports: [{ teamId, event: PresenceEvent.CONNECTED, node }] });
    };
  }

  function agent(h: RegistryHarness, key: string, options: FakeAgentOptions, url = h.url): FakeAgent {
    const teamId = key === h.teamB.key ? h.teamB.teamId : h.teamA.teamId;
    const a = new FakeAgent(createServiceClient(HostService, { baseUrl: url, apiKey: key }), { connect: brokerSees(h, teamId), ...options });
    cleanup.push(() => a.close());
    return a;
  }

  async function clusterState(h: RegistryHarness, slug: string) {
    return (await h.client(ClusterService).getCluster({ slug })).cluster!;
  }

  async function createCluster(h: RegistryHarness, name: string, spec: Record<string, unknown>) {
    return (await h.client(ClusterService).createCluster({ name, spec: { runnerMemoryBytes: GIB, runnerGpuCount: 0, ...spec } })).cluster!;
  }

  it("places 3 runners of 2 CPUs on two hosts of 4, READY once they run; 5 is DEGRADED with the reason; a third host makes it READY", async () => {
    const h = await harness("prov_reconcile");
    const a1 = agent(h, h.teamA.key, { name: "h1", cpuCores: 4 });
    const a2 = agent(h, h.teamA.key, { name: "h2", cpuCores: 4 });
    const c = await createCluster(h, "spread", { runnerCount: 3, runnerCpuCores: 2 });

    const ready = await eventually(async () => {
      const got = await clusterState(h, c.slug);
      return got.state === ClusterState.READY && got;
    }, "READY");
    expect(ready.runningRunners).toBe(3);
    expect(ready.desiredRunners).toBe(3);
    expect([a1.launches.length, a2.launches.length].sort()).toEqual([1, 2]);
    expect(a1.launches[0]?.clusterId ?? a2.launches[0]?.clusterId).toBe(c.id);

    const hosts = (await h.client(HostService).listHosts({})).hosts;
    expect(hosts.map((x) => [x.name, x.state, x.capacity?.cpuCores])).toEqual([
      ["h1", HostState.ONLINE, 4],
      ["h2", HostState.ONLINE, 4],
    ]);
    expect(hosts.reduce((n, x) => n + (x.used?.cpuCores ?? 0), 0)).toBe(6);

    await h.client(ClusterService).updateCluster({ slug: c.slug, spec: { runnerCount: 5 } });
    const degraded = await eventually(async () => {
      const got = await clusterState(h, c.slug);
      return got.state === ClusterState.DEGRADED && got;
    }, "DEGRADED");
    expect(degraded.stateReason).toBe("4 of 5 runners placed: no host has 2 free CPUs");

    const a3 = agent(h, h.teamA.key, { name: "h3", cpuCores: 4 });
    const again = await eventually(async () => {
      const got = await clusterState(h, c.slug);
      return got.state === ClusterState.READY && got;
    }, "READY with a third host");
    expect(again.runningRunners).toBe(5);
    expect(a3.launches).toHaveLength(1);
  });

  it("a host whose stream is gone past the grace is OFFLINE and its runners are placed elsewhere", async () => {
    const h = await harness("prov_offline");
    const a1 = agent(h, h.teamA.key, { name: "h1", cpuCores: 4 });
    const c = await createCluster(h, "moves", { runnerCount: 2, runnerCpuCores: 2 });
    await eventually(async () => (await clusterState(h, c.slug)).state === ClusterState.READY, "READY on h1");
    expect(a1.launches).toHaveLength(2);

    const a2 = agent(h, h.teamA.key, { name: "h2", cpuCores: 4 });
    await eventually(() => a2.hostId !== "", "h2 welcomed");
    await a1.close();
    await eventually(async () => (await h.client(HostService).getHost({ host: "h1" })).host?.state === HostState.OFFLINE, "h1 OFFLINE");
    await eventually(() => a2.launches.length === 2, "runners re-placed on h2");
    await eventually(async () => (await clusterState(h, c.slug)).state === ClusterState.READY, "READY on h2");
    // The keys minted for h1's runners are revoked with their placements.
    for (const l of a1.launches) {
      expect(await codeOf(h.serviceClient(ApiKeyService).verifyApiKey({ key: l.apiKey }))).toBe(Code.NotFound);
    }
  });

  it("two registry replicas reconciling the same clusters never launch more than asked", async () => {
    const h = await harness("prov_replicas");
    const second = createRegistry({
      db: h.db,
      provisioning: { ...FAST, databaseUrl: h.databaseUrl },
    });
    const server = createServer({
      name: "test-replica-b",
      mounts: second.mounts,
      verifier: second.verifier,
      serviceKey: TEST_SERVICE_KEY,
      port: 0,
      logger: createLogger("test-replica-b", "silent"),
    });
    await server.listen();
    server.setServing(true);
    await second.start();
    cleanup.push(async () => {
      await second.close();
      await server.close(1_000);
    });

    // One agent on each replica: commands placed by either replica reach both.
    const a1 = agent(h, h.teamA.key, { name: "h1", cpuCores: 8 });
    const a2 = agent(h, h.teamA.key, { name: "h2", cpuCores: 8 }, server.url);
    const clusters = await Promise.all([1, 2, 3].map((i) => createCluster(h, `pair-${i}`, { runnerCount: 2, runnerCpuCores: 1 })));
    // Passes on both replicas at once, over and over, besides their own loops.
    for (let i = 0; i < 5; i++) await Promise.all([h.registry.reconciler.runOnce(), second.reconciler.runOnce(), h.registry.reconciler.runOnce()]);
    for (const c of clusters) {
      await eventually(async () => (await clusterState(h, c.slug)).state === ClusterState.READY, `READY ${c.slug}`);
    }
    expect(a1.launches.length + a2.launches.length).toBe(6);
    expect(a1.launches.length).toBeGreaterThan(0);
    expect(a2.launches.length).toBeGreaterThan(0);
    const placed = await h.db.selectFrom("placements").select("runner_id").execute();
    expect(placed).toHaveLength(6);
  });

  it("an idle cluster scales to zero and is STOPPED with stops sent; queued work wakes it", async () => {
    const work = new Map<string, ClusterWork>();
    const h = await harness("prov_idle", work);
    const a1 = agent(h, h.teamA.key, { name: "h1", cpuCores: 4 });
    const c = await createCluster(h, "sleepy", { runnerCount: 2, runnerCpuCores: 1, idleTimeoutSeconds: 1 });
    await eventually(async () => (await clusterState(h, c.slug)).state === ClusterState.READY, "READY");
    const stopped = await eventually(async () => {
      const got = await clusterState(h, c.slug);
      return got.state === ClusterState.STOPPED && got;
    }, "STOPPED");
    expect(stopped.desiredRunners).toBe(0);
    expect(stopped.stateReason).toMatch(/idle/);
    expect(a1.stops.map((s) => s.runnerId).sort()).toEqual(a1.launches.map((l) => l.runnerId).sort());
    expect(Number(a1.stops[0]?.grace?.seconds ?? 0)).toBeGreaterThan(0);

    // A job submitted to it: its task waits in the queue, and the queue wakes the cluster.
    work.set(c.id, { queued: 1, running: 0 });
    const woken = await eventually(async () => {
      const got = await clusterState(h, c.slug);
      return got.state === ClusterState.READY && got;
    }, "woken READY");
    expect(woken.runningRunners).toBe(2);
    expect(a1.launches).toHaveLength(4);
  });

  it("provisions only clusters created or scaled with a runner count, not those corral/default filled one into", async () => {
    const h = await harness("prov_which");
    const byHand = (await h.client(ClusterService).createCluster({ name: "by hand" })).cluster!;
    // corral/default fills runner_count 1 into the stored spec; that alone asks for nothing.
    expect(byHand.spec?.runnerCount).toBe(1);
    const asked = await createCluster(h, "asked", { runnerCount: 1, runnerCpuCores: 1 });
    // A team with no host: the asked-for cluster is reconciled and says why nothing runs.
    const degraded = await eventually(async () => {
      const got = await clusterState(h, asked.slug);
      return got.state === ClusterState.DEGRADED && got;
    }, "DEGRADED without hosts");
    expect(degraded.stateReason).toBe("0 of 1 runners placed: no online host");
    const a1 = agent(h, h.teamA.key, { name: "h1", cpuCores: 8 });
    await eventually(async () => (await clusterState(h, asked.slug)).state === ClusterState.READY, "READY once a host comes");
    expect(a1.launches.map((l) => l.clusterId)).toEqual([asked.id]);
    expect((await clusterState(h, byHand.slug)).state).toBe(ClusterState.UNSPECIFIED);
    expect(await codeOf(h.client(ClusterService).stopCluster({ slug: byHand.slug }))).toBe(Code.FailedPrecondition);
    // Scaling it is asking: from then on its runners are placed.
    await h.client(ClusterService).updateCluster({ slug: byHand.slug, spec: { runnerCount: 2 } });
    await eventually(async () => (await clusterState(h, byHand.slug)).state === ClusterState.READY, "the scaled cluster READY");
    expect(a1.launches.filter((l) => l.clusterId === byHand.id)).toHaveLength(2);
  });

  it("counts a runner as running only once a broker reports it connected", async () => {
    const h = await harness("prov_presence");
    const unseen: LaunchRunner[] = [];
    const a1 = agent(h, h.teamA.key, { name: "h1", cpuCores: 4, connect: async (l) => void unseen.push(l) });
    const c = await createCluster(h, "unseen", { runnerCount: 1, runnerCpuCores: 1 });
    const launched = await eventually(() => unseen[0], "the launch");
    await eventually(async () => {
      const hosts = (await h.client(HostService).listHosts({})).hosts;
      return hosts[0]?.runners[0]?.state === HostedRunnerState.RUNNING;
    }, "the agent's RUNNING recorded");
    await h.registry.reconciler.runOnce();
    const waiting = await clusterState(h, c.slug);
    expect(waiting.state).toBe(ClusterState.PROVISIONING);
    expect(waiting.runningRunners).toBe(0);
    await brokerSees(h, h.teamA.teamId)(launched);
    const ready = await eventually(async () => {
      const got = await clusterState(h, c.slug);
      return got.state === ClusterState.READY && got;
    }, "READY once connected");
    expect(ready.runningRunners).toBe(1);
    expect(a1.launches).toHaveLength(1);
  });

  it("StopCluster drains a cluster's runners and StartCluster brings them back", async () => {
    const h = await harness("prov_stop_start");
    const a1 = agent(h, h.teamA.key, { name: "h1", cpuCores: 4 });
    const c = await createCluster(h, "manual", { runnerCount: 1, runnerCpuCores: 1 });
    await eventually(async () => (await clusterState(h, c.slug)).state === ClusterState.READY, "READY");
    await h.client(ClusterService).stopCluster({ slug: c.slug });
    await eventually(async () => (await clusterState(h, c.slug)).state === ClusterState.STOPPED, "STOPPED");
    expect(a1.stops).toHaveLength(1);
    await h.client(ClusterService).startCluster({ slug: c.slug });
    await eventually(async () => (await clusterState(h, c.slug)).state === ClusterState.READY, "READY again");
    expect(a1.launches).toHaveLength(2);
  });

  it("a spec asking for GPUs no host has is DEGRADED naming GPUs", async () => {
    const h = await harness("prov_gpu");
    agent(h, h.teamA.key, { name: "cpu-only", cpuCores: 16 });
    const c = await createCluster(h, "gpus", { runnerCount: 2, runnerCpuCores: 2, runnerGpuCount: 1 });
    const got = await eventually(async () => {
      const x = await clusterState(h, c.slug);
      return x.state === ClusterState.DEGRADED && x;
    }, "DEGRADED");
    expect(got.stateReason).toBe("0 of 2 runners placed: no host has 1 free GPU");
  });

  it("a runner's key may only work on its cluster: everything else answers PERMISSION_DENIED", async () => {
    const h = await harness("prov_runner_key");
    const a1 = agent(h, h.teamA.key, { name: "h1", cpuCores: 4 });
    const c = await createCluster(h, "scoped", { runnerCount: 1, runnerCpuCores: 1 });
    const other = await h.client(ClusterService).createCluster({ name: "other", spec: { runnerCount: 0 } });
    await eventually(() => a1.launches.length === 1, "launch");
    const key = a1.launches[0]!.apiKey;
    expect(a1.launches[0]!.concurrency).toBe(1);

    const verified = await h.serviceClient(ApiKeyService).verifyApiKey({ key });
    expect(verified.scope).toBe(ApiKeyScope.RUNNER);
    expect(verified.clusterId).toBe(c.id);
    expect(verified.teamId).toBe(h.teamA.teamId);

    expect(await codeOf(h.client(ClusterService, key).getCluster({ slug: other.cluster!.slug }))).toBe(Code.PermissionDenied);
    expect(await codeOf(h.client(ClusterService, key).getCluster({ slug: c.slug }))).toBe(Code.PermissionDenied);
    expect(await codeOf(h.client(ApiKeyService, key).createApiKey({ name: "escalate" }))).toBe(Code.PermissionDenied);
    expect(await codeOf(h.client(HostService, key).listHosts({}))).toBe(Code.PermissionDenied);
    expect(await codeOf(h.client(ClusterService, key).createCluster({ name: "mine" }))).toBe(Code.PermissionDenied);
    // A runner key cannot pose as an agent either.
    const posing = agent(h, key, { name: "evil", cpuCores: 64 });
    await posing.done;
    expect((posing.ended as { code?: number }).code).toBe(Code.PermissionDenied);

    const listed = (await h.client(ApiKeyService).listApiKeys({})).apiKeys.find((k) => k.scope === ApiKeyScope.RUNNER);
    expect(listed?.clusterId).toBe(c.id);
  });

  it("keeps a bounded tail of each runner's log lines and counts what it dropped", async () => {
    const h = await harness("prov_logs");
    const a1 = agent(h, h.teamA.key, { name: "h1", cpuCores: 4 });
    await createCluster(h, "chatty", { runnerCount: 1, runnerCpuCores: 1 });
    await eventually(() => a1.launches.length === 1, "launch");
    const runnerId = a1.launches[0]!.runnerId;
    for (let batch = 0; batch < 3; batch++) {
      a1.send({
        case: "logs",
        value: { runnerId, lines: Array.from({ length: 500 }, (_, i) => ({ stream: "stdout", text: `line ${batch * 500 + i}` })) },
      });
    }
    const logs = await eventually(async () => {
      const got = await h.client(HostService).getRunnerLogs({ runnerId, tail: 10_000 });
      return got.dropped === 500n && got;
    }, "500 dropped");
    expect(logs.lines).toHaveLength(1_000);
    expect(logs.lines.at(-1)?.text).toBe("line 1499");
    expect((await h.client(HostService).getRunnerLogs({ runnerId })).lines).toHaveLength(200);
    expect(await codeOf(h.client(HostService, h.teamB.key).getRunnerLogs({ runnerId }))).toBe(Code.NotFound);
  });

  it("DeleteCluster refuses a cluster with queued or running tasks unless forced", async () => {
    const work = new Map<string, ClusterWork>();
    const h = await harness("delete-busy", work);
    const clusters = h.client(ClusterService);
    const { cluster } = await clusters.createCluster({ name: "busy" });
    work.set(cluster!.id, { queued: 2, running: 1 });
    const err = await clusters.deleteCluster({ slug: cluster!.slug }).catch((e: unknown) => ConnectError.from(e));
    expect(err).toMatchObject({ code: Code.FailedPrecondition });
    expect((err as ConnectError).rawMessage).toContain("2 queued and 1 running");
    expect((await clusters.getCluster({ slug: cluster!.slug })).cluster?.id).toBe(cluster!.id);
    await clusters.deleteCluster({ slug: cluster!.slug, force: true });
    expect(await codeOf(clusters.getCluster({ slug: cluster!.slug }))).toBe(Code.NotFound);
    // Idle clusters go without force.
    const { cluster: idle } = await clusters.createCluster({ name: "idle" });
    await clusters.deleteCluster({ slug: idle!.slug });
  });

  it("GetRuntimeConfig reports the host grace and intervals this registry uses", async () => {
    const h = await harness("prov_runtime");
    const cfg = await h.client(RuntimeService).getRuntimeConfig({});
    expect(Number(cfg.provisioning?.hostGrace?.seconds)).toBe(1);
    expect(cfg.provisioning?.hostGrace?.nanos).toBe(500_000_000);
    expect(cfg.provisioning?.reconcileInterval?.nanos).toBe(100_000_000);
  });
});
