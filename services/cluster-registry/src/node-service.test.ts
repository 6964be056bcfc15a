import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import {
  ClusterService,
  NodeSchema,
  NodeService,
  NodeState,
  PresenceEvent,
  type PresenceReport,
} from "@corral/proto";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeOf, startRegistryHarness, type RegistryHarness } from "./test-harness.js";
import { deleteRetiredNodes } from "./store/node-repository.js";

describe("NodeService", () => {
  let h: RegistryHarness;
  let cluster: { id: string; slug: string };
  let other: { id: string; slug: string };

  beforeAll(async () => {
    h = await startRegistryHarness("nodes");
    cluster = (await h.client(ClusterService).createCluster({ name: "workers" })).cluster!;
    other = (await h.client(ClusterService).createCluster({ name: "others" })).cluster!;
  });
  afterAll(() => h?.close());

  function report(
    event: PresenceEvent,
    node: MessageInitShape<typeof NodeSchema> & { id: string },
    teamId = h.teamA.teamId,
  ): Omit<PresenceReport, "$typeName"> {
    return {
      teamId,
      event,
      node: create(NodeSchema, {
        sessionId: "s1",
        clusterId: cluster.id,
        clusterSlug: cluster.slug,
        hostname: "host-1",
        slots: 4,
        brokerId: "broker-1",
        ...node,
      }),
    };
  }

  async function presence(...reports: Array<Omit<PresenceReport, "$typeName">>) {
    await h.serviceClient(NodeService).reportPresence({ reports });
  }

  it("shows what brokers report", async () => {
    await presence(
      report(PresenceEvent.CONNECTED, {
        id: "runner-1",
        hardware: { cpuCores: 8, gpuCount: 1, gpuType: "t4", memoryBytes: 2n ** 35n, hostname: "h", os: "linux", arch: "x64" },
        identifiers: [{ name: "Train", version: "v1.2" }],
        labels: { zone: "a" },
        busySlots: 1,
        connectTime: timestampFromDate(new Date("2026-01-01T00:00:00Z")),
      }),
    );
    const { node } = await h.client(NodeService).getNode({ id: "runner-1" });
    expect(node).toMatchObject({
      id: "runner-1",
      sessionId: "s1",
      clusterId: cluster.id,
      clusterSlug: cluster.slug,
      hostname: "host-1",
      slots: 4,
      busySlots: 1,
      brokerId: "broker-1",
      state: NodeState.ONLINE,
      labels: { zone: "a" },
    });
    expect(node?.hardware).toMatchObject({ cpuCores: 8, gpuCount: 1, gpuType: "t4", memoryBytes: 2n ** 35n, os: "linux" });
    expect(node?.identifiers.map((i) => [i.name, i.version])).toEqual([["Train", "v1.2"]]);
    expect(node?.connectTime?.seconds).toBe(BigInt(Date.parse("2026-01-01T00:00:00Z") / 1000));
    expect(node?.lastSeenTime).toBeDefined();
  });

  it("tracks draining and disconnects, and ignores stale reports from an old session", async () => {
    const nodes = h.client(NodeService);
    const ago = (ms: number) => timestampFromDate(new Date(Date.now() - ms));
    const s1 = { id: "runner-2", sessionId: "s1", connectTime: ago(7_200_000) };
    await presence(report(PresenceEvent.CONNECTED, s1));
    await presence(report(PresenceEvent.DRAINING, s1));
    expect((await nodes.getNode({ id: "runner-2" })).node?.state).toBe(NodeState.DRAINING);
    // An update from the draining session keeps it draining.
    await presence(report(PresenceEvent.UPDATED, { ...s1, busySlots: 2 }));
    const draining = (await nodes.getNode({ id: "runner-2" })).node;
    expect(draining?.state).toBe(NodeState.DRAINING);
    expect(draining?.busySlots).toBe(2);

    // The runner reconnects elsewhere, to a broker whose clock is an hour behind; the old
    // broker's late reports must not hide the new session.
    const s2 = { id: "runner-2", sessionId: "s2", brokerId: "broker-2", connectTime: ago(600_000) };
    await presence(report(PresenceEvent.CONNECTED, { ...s2, lastSeenTime: ago(3_600_000) }));
    await presence(report(PresenceEvent.UPDATED, { ...s1, lastSeenTime: ago(60_000) }));
    await presence(report(PresenceEvent.DISCONNECTED, s1));
    const moved = (await nodes.getNode({ id: "runner-2" })).node;
    expect(moved).toMatchObject({ state: NodeState.ONLINE, sessionId: "s2", brokerId: "broker-2", connectTime: s2.connectTime });

    // A session whose CONNECTED report was lost still takes over with its first update.
    const s3 = { id: "runner-2", sessionId: "s3", brokerId: "broker-3", connectTime: ago(1_000) };
    await presence(report(PresenceEvent.UPDATED, s3));
    expect((await nodes.getNode({ id: "runner-2" })).node).toMatchObject({ sessionId: "s3", state: NodeState.ONLINE });

    await presence(report(PresenceEvent.DISCONNECTED, s3));
    expect((await nodes.getNode({ id: "runner-2" })).node?.state).toBe(NodeState.OFFLINE);
  });

  it("shows the tasks a node runs now, as its last report named them, and none once it is offline", async () => {
    const nodes = h.client(NodeService);
    const since = new Date("2026-12-01T10:00:00Z");
    const task = { taskId: "task-1", attempt: 2, identifier: { name: "Train", version: "v1.2" }, jobId: "job-1", since: timestampFromDate(since) };
    await presence(report(PresenceEvent.CONNECTED, { id: "runner-busy", busySlots: 1, runningTasks: [task] }));
    const [running] = (await nodes.getNode({ id: "runner-busy" })).node!.runningTasks;
    expect(running).toMatchObject({ taskId: "task-1", attempt: 2, identifier: { name: "Train", version: "v1.2" }, jobId: "job-1" });
    expect(running!.since).toEqual(timestampFromDate(since));
    const listed = (await nodes.listNodes({ clusterSlug: cluster.slug })).nodes.find((n) => n.id === "runner-busy");
    expect(listed?.runningTasks.map((t) => t.taskId)).toEqual(["task-1"]);

    // The next report replaces the list: the task ended.
    await presence(report(PresenceEvent.UPDATED, { id: "runner-busy", busySlots: 0, runningTasks: [] }));
    expect((await nodes.getNode({ id: "runner-busy" })).node!.runningTasks).toEqual([]);

    // A node no broker reported for a while runs nothing anyone knows of.
    await presence(report(PresenceEvent.UPDATED, { id: "runner-busy", busySlots: 1, runningTasks: [task] }));
    await sql`update nodes set report_time = now() - interval '1 hour' where runner_id = 'runner-busy'`.execute(h.db);
    expect((await nodes.getNode({ id: "runner-busy" })).node).toMatchObject({ state: NodeState.OFFLINE, runningTasks: [] });
  });

  it("refuses a report naming more than 100 running tasks for a node, naming the field", async () => {
    const task = { taskId: "t", attempt: 1, identifier: { name: "Train", version: "v1.2" }, jobId: "j" };
    const err = await presence(report(PresenceEvent.UPDATED, { id: "runner-many", runningTasks: Array.from({ length: 101 }, () => task) })).then(
      () => undefined,
      (e: unknown) => e as { code: Code; rawMessage: string },
    );
    expect(err?.code).toBe(Code.InvalidArgument);
    expect(err?.rawMessage).toContain("running_tasks");
  });

  it("names the host of a runner an agent launched, and no host for one started by hand", async () => {
    const hostId = "0193a000-0000-7000-8000-00000000b001";
    await sql`insert into hosts (id, team_id, name, cpu_cores, memory_bytes, gpu_count, gpu_type, labels, agent_version, connect_time, last_seen_time)
      values (${hostId}, ${h.teamA.teamId}, 'rack-7', 4, 0, 0, '', '{}', 'test', now(), now())`.execute(h.db);
    await sql`insert into placements (runner_id, team_id, cluster_id, host_id, cpu_cores, memory_bytes, gpu_count, gpu_type, desired, state)
      values ('runner-placed', ${h.teamA.teamId}, ${cluster.id}, ${hostId}, 1, 0, 0, '', 'run', 'running')`.execute(h.db);
    await presence(report(PresenceEvent.CONNECTED, { id: "runner-placed" }), report(PresenceEvent.CONNECTED, { id: "runner-by-hand" }));
    const nodes = h.client(NodeService);
    expect((await nodes.getNode({ id: "runner-placed" })).node).toMatchObject({ hostId, hostName: "rack-7" });
    expect((await nodes.getNode({ id: "runner-by-hand" })).node).toMatchObject({ hostId: "", hostName: "" });
    const listed = (await nodes.listNodes({ clusterSlug: cluster.slug })).nodes.find((n) => n.id === "runner-placed");
    expect(listed?.hostName).toBe("rack-7");
  });

  it("deletes nodes offline for longer than the retention, keeps the others", async () => {
    await presence(report(PresenceEvent.CONNECTED, { id: "runner-retired" }), report(PresenceEvent.CONNECTED, { id: "runner-recent" }));
    await sql`update nodes set report_time = now() - interval '2 days' where runner_id = 'runner-retired'`.execute(h.db);
    await sql`update nodes set report_time = now() - interval '1 hour' where runner_id = 'runner-recent'`.execute(h.db);
    expect(await deleteRetiredNodes(h.db, 24 * 60 * 60_000)).toBe(1);
    const nodes = h.client(NodeService);
    expect(await codeOf(nodes.getNode({ id: "runner-retired" }))).toBe(Code.NotFound);
    expect((await nodes.getNode({ id: "runner-recent" })).node?.state).toBe(NodeState.OFFLINE);
  });

  it("forgets a deleted cluster's nodes", async () => {
    const { cluster: doomed } = await h.client(ClusterService).createCluster({ name: "doomed" });
    await presence(report(PresenceEvent.CONNECTED, { id: "runner-doomed", clusterId: doomed!.id, clusterSlug: doomed!.slug }));
    const nodes = h.client(NodeService);
    expect((await nodes.getNode({ id: "runner-doomed" })).node?.clusterSlug).toBe(doomed!.slug);
    await h.client(ClusterService).deleteCluster({ slug: doomed!.slug, force: true });
    expect(await codeOf(nodes.getNode({ id: "runner-doomed" }))).toBe(Code.NotFound);
    expect((await nodes.listNodes({})).nodes.map((n) => n.id)).not.toContain("runner-doomed");
  });

  it("keeps the last of several reports for one runner in a batch", async () => {
    await presence(
      report(PresenceEvent.CONNECTED, { id: "runner-3" }),
      report(PresenceEvent.UPDATED, { id: "runner-3", busySlots: 3 }),
    );
    const { node } = await h.client(NodeService).getNode({ id: "runner-3" });
    expect(node).toMatchObject({ state: NodeState.ONLINE, busySlots: 3 });
  });

  it("reads a node as OFFLINE when no report arrived within the timeout", async () => {
    await presence(report(PresenceEvent.CONNECTED, { id: "runner-silent" }));
    // Age the last report instead of waiting for the timeout to pass.
    await sql`update nodes set report_time = now() - interval '1 hour' where runner_id = 'runner-silent'`.execute(h.db);
    const nodes = h.client(NodeService);
    expect((await nodes.getNode({ id: "runner-silent" })).node?.state).toBe(NodeState.OFFLINE);
    const running = await nodes.listRunningNodes({});
    expect(running.nodes.map((n) => n.id)).not.toContain("runner-silent");
    const offline = await nodes.listNodes({ state: NodeState.OFFLINE });
    expect(offline.nodes.map((n) => n.id)).toContain("runner-silent");
    // A new report brings it back.
    await presence(report(PresenceEvent.UPDATED, { id: "runner-silent" }));
    expect((await nodes.getNode({ id: "runner-silent" })).node?.state).toBe(NodeState.ONLINE);
  });

  describe("broker instances", () => {
    async function fromInstance(brokerInstance: string, ...reports: Array<Omit<PresenceReport, "$typeName">>) {
      return h.serviceClient(NodeService).reportPresence({ reports, brokerInstance });
    }
    const age = (runnerId: string) =>
      sql`update nodes set report_time = now() - interval '1 hour' where runner_id = ${runnerId}`.execute(h.db);
    const ageInstance = (instance: string) =>
      sql`update broker_instances set last_seen_time = now() - interval '1 hour' where instance = ${instance}`.execute(h.db);

    it("keeps a node ONLINE while the broker process that reported it calls, without its report again", async () => {
      const answer = await fromInstance("b-1.one", report(PresenceEvent.CONNECTED, { id: "runner-kept", busySlots: 2 }));
      expect(answer.keepsInstances).toBe(true);
      await age("runner-kept");
      const before = Date.now();
      await fromInstance("b-1.one");
      const nodes = h.client(NodeService);
      const { node } = await nodes.getNode({ id: "runner-kept" });
      expect(node).toMatchObject({ state: NodeState.ONLINE, busySlots: 2 });
      // Seen when its broker process last called.
      expect(Number(node!.lastSeenTime!.seconds) * 1000).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 5_000);
      expect((await nodes.listRunningNodes({})).nodes.map((n) => n.id)).toContain("runner-kept");
      expect((await nodes.listNodes({ state: NodeState.ONLINE })).nodes.map((n) => n.id)).toContain("runner-kept");
      expect((await nodes.listNodes({ state: NodeState.OFFLINE })).nodes.map((n) => n.id)).not.toContain("runner-kept");

      // The broker process stops calling: the node reads OFFLINE once the timeout passes.
      await ageInstance("b-1.one");
      expect((await nodes.getNode({ id: "runner-kept" })).node?.state).toBe(NodeState.OFFLINE);
      expect((await nodes.listRunningNodes({})).nodes.map((n) => n.id)).not.toContain("runner-kept");
      expect((await nodes.listNodes({ state: NodeState.OFFLINE })).nodes.map((n) => n.id)).toContain("runner-kept");
    });

    it("counts only the broker process of a node's last report, and never one that reported it gone", async () => {
      const ago = (ms: number) => timestampFromDate(new Date(Date.now() - ms));
      const old = { id: "runner-moved", sessionId: "s-old", connectTime: ago(600_000) };
      await fromInstance("b-2.old", report(PresenceEvent.CONNECTED, old));
      // The runner reconnects through another broker process, which then goes quiet.
      await fromInstance("b-2.new", report(PresenceEvent.CONNECTED, { id: "runner-moved", sessionId: "s-new", connectTime: ago(1_000) }));
      // A late report of the old session changes nothing.
      await fromInstance("b-2.old", report(PresenceEvent.UPDATED, old));
      await age("runner-moved");
      await ageInstance("b-2.new");
      await fromInstance("b-2.old");
      const nodes = h.client(NodeService);
      expect((await nodes.getNode({ id: "runner-moved" })).node).toMatchObject({ state: NodeState.OFFLINE, sessionId: "s-new" });

      await fromInstance("b-2.gone", report(PresenceEvent.DISCONNECTED, { id: "runner-left", sessionId: "s1" }));
      await fromInstance("b-2.gone");
      expect((await nodes.getNode({ id: "runner-left" })).node?.state).toBe(NodeState.OFFLINE);
    });

    it("retires nodes and broker processes gone longer than the retention, not nodes a live process keeps", async () => {
      await fromInstance("b-3.live", report(PresenceEvent.CONNECTED, { id: "runner-long" }));
      await fromInstance("b-3.live", report(PresenceEvent.CONNECTED, { id: "runner-ended" }));
      await fromInstance("b-3.live", report(PresenceEvent.DISCONNECTED, { id: "runner-ended" }));
      await fromInstance("b-3.dead", report(PresenceEvent.CONNECTED, { id: "runner-orphaned" }));
      await sql`update nodes set report_time = now() - interval '2 days'
        where runner_id in ('runner-long', 'runner-ended', 'runner-orphaned')`.execute(h.db);
      await sql`update broker_instances set last_seen_time = now() - interval '2 days' where instance = 'b-3.dead'`.execute(h.db);
      await deleteRetiredNodes(h.db, 24 * 60 * 60_000);
      const left = await h.db
        .selectFrom("nodes")
        .select("runner_id")
        .where("runner_id", "in", ["runner-long", "runner-ended", "runner-orphaned"])
        .execute();
      expect(left.map((r) => r.runner_id)).toEqual(["runner-long"]);
      const instances = await h.db.selectFrom("broker_instances").select("instance").where("instance", "like", "b-3.%").execute();
      expect(instances.map((r) => r.instance)).toEqual(["b-3.live"]);
      expect((await h.client(NodeService).getNode({ id: "runner-long" })).node?.state).toBe(NodeState.ONLINE);
    });

    it("refuses a broker instance Postgres or the pattern would not take, naming the field", async () => {
      for (const bad of ["b\u0000x", "has space", "x".repeat(129)]) {
        const err = await fromInstance(bad).then(
          () => undefined,
          (e: unknown) => e as { code?: Code; message?: string },
        );
        expect(err?.code).toBe(Code.InvalidArgument);
        expect(err?.message).toContain("broker_instance");
      }
    });
  });

  it("lists by cluster and state, with a cursor", async () => {
    await presence(
      ...Array.from({ length: 5 }, (_, i) =>
        report(PresenceEvent.CONNECTED, { id: `other-${i}`, clusterId: other.id, clusterSlug: other.slug }),
      ),
    );
    await presence(report(PresenceEvent.DRAINING, { id: "other-4", clusterId: other.id, clusterSlug: other.slug }));
    const nodes = h.client(NodeService);
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await nodes.listNodes({ clusterSlug: other.slug, pageSize: 2, pageToken });
      seen.push(...page.nodes.map((n) => n.id));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(seen).toEqual(["other-0", "other-1", "other-2", "other-3", "other-4"]);

    const draining = await nodes.listNodes({ clusterSlug: other.slug, state: NodeState.DRAINING });
    expect(draining.nodes.map((n) => n.id)).toEqual(["other-4"]);
    const online = await nodes.listNodes({ clusterSlug: other.slug, state: NodeState.ONLINE });
    expect(online.nodes).toHaveLength(4);
    const running = await nodes.listRunningNodes({ clusterSlug: other.slug });
    expect(running.nodes).toHaveLength(5);
    const everywhere = await nodes.listNodes({});
    expect(everywhere.nodes.length).toBeGreaterThan(5);
    expect(await codeOf(nodes.listNodes({ clusterSlug: "no-such-cluster" }))).toBe(Code.NotFound);
    expect(await codeOf(nodes.listRunningNodes({ clusterSlug: "no-such-cluster" }))).toBe(Code.NotFound);
  });

  it("keeps teams' nodes apart: the broker names the team", async () => {
    await presence(report(PresenceEvent.CONNECTED, { id: "runner-b", clusterId: "x", clusterSlug: "x" }, h.teamB.teamId));
    const a = h.client(NodeService);
    const b = h.client(NodeService, h.teamB.key);
    expect(await codeOf(a.getNode({ id: "runner-b" }))).toBe(Code.NotFound);
    expect(await codeOf(b.getNode({ id: "runner-1" }))).toBe(Code.NotFound);
    expect((await b.listNodes({})).nodes.map((n) => n.id)).toEqual(["runner-b"]);
    expect((await b.listRunningNodes({})).nodes.map((n) => n.id)).toEqual(["runner-b"]);
    expect((await a.listNodes({})).nodes.map((n) => n.id)).not.toContain("runner-b");
    // The same runner id in two teams is two nodes.
    await presence(report(PresenceEvent.CONNECTED, { id: "runner-1", clusterId: "x", clusterSlug: "x" }, h.teamB.teamId));
    expect((await a.getNode({ id: "runner-1" })).node?.clusterId).toBe(cluster.id);
  });

  it("lets only the service key report presence, and checks reports", async () => {
    const asUser = h.client(NodeService);
    expect(await codeOf(asUser.reportPresence({ reports: [report(PresenceEvent.CONNECTED, { id: "r" })] }))).toBe(
      Code.PermissionDenied,
    );
    const internal = h.serviceClient(NodeService);
    expect(await codeOf(internal.reportPresence({ reports: [report(PresenceEvent.CONNECTED, { id: "" })] }))).toBe(
      Code.InvalidArgument,
    );
    expect(await codeOf(internal.reportPresence({ reports: [report(PresenceEvent.UNSPECIFIED, { id: "r" })] }))).toBe(
      Code.InvalidArgument,
    );
    expect(await codeOf(internal.reportPresence({ reports: [{ teamId: h.teamA.teamId, event: PresenceEvent.CONNECTED }] }))).toBe(
      Code.InvalidArgument,
    );
    expect(await codeOf(internal.reportPresence({ reports: [report(PresenceEvent.CONNECTED, { id: "r" }, "")] }))).toBe(
      Code.InvalidArgument,
    );
    // Reports for teams that do not exist are dropped; the rest of the batch is applied.
    await internal.reportPresence({
      reports: [
        report(PresenceEvent.CONNECTED, { id: "orphan" }, "no-such-team"),
        report(PresenceEvent.CONNECTED, { id: "orphan" }, "0190a4d2-0000-7000-8000-000000000000"),
        report(PresenceEvent.CONNECTED, { id: "beside-orphan" }),
      ],
    });
    expect((await asUser.getNode({ id: "beside-orphan" })).node?.state).toBe(NodeState.ONLINE);
    expect(await h.db.selectFrom("nodes").select("runner_id").where("runner_id", "=", "orphan").execute()).toEqual([]);
    expect(
      await codeOf(
        internal.reportPresence({
          reports: [report(PresenceEvent.CONNECTED, { id: "r", identifiers: [{ name: "T", version: "1.0" }] })],
        }),
      ),
    ).toBe(Code.InvalidArgument);
    expect(await codeOf(internal.reportPresence({ reports: [] }))).toBeUndefined();
  });

  it("rejects invalid input for every bounded field", async () => {
    const nodes = h.client(NodeService);
    expect(await codeOf(nodes.getNode({ id: "" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(nodes.getNode({ id: "i".repeat(129) }))).toBe(Code.InvalidArgument);
    expect(await codeOf(nodes.listNodes({ clusterSlug: "bad slug" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(nodes.listNodes({ clusterSlug: "s".repeat(101) }))).toBe(Code.InvalidArgument);
    expect(await codeOf(nodes.listNodes({ state: 99 as NodeState }))).toBe(Code.InvalidArgument);
    expect(await codeOf(nodes.listNodes({ pageSize: 1001 }))).toBe(Code.InvalidArgument);
    expect(await codeOf(nodes.listNodes({ pageToken: "p".repeat(513) }))).toBe(Code.InvalidArgument);
    expect(await codeOf(nodes.listNodes({ pageToken: "!!" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(nodes.listRunningNodes({ clusterSlug: "bad slug" }))).toBe(Code.InvalidArgument);
  });
});
