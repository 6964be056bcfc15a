// GetClusterBacklog as an autoscaler reads it: a plain HTTP GET in Connect's JSON form with the
// team's key (KEDA's metrics-api trigger), counting waiting tasks in every band, subtasks and
// tasks behind a concurrency key included, and tasks a runner holds.
import { create } from "@bufbuild/protobuf";
import { ConcurrencyLimitSchema } from "@corral/proto";
import { testRedisPrefix } from "@corral/server-kit/testing";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { ClusterResolver } from "./session-hub.js";
import { createTestLedger, type TestLedger } from "./test-support/test-ledger.js";
import {
  CLUSTERS,
  connectRunner,
  dropRedisPrefix,
  GPU_RUNNER_KEY,
  hello,
  OTHER_TEAM_KEY,
  runnerTransport,
  startBrokerServer,
  staticClusters,
  TEAM_KEY,
  type BrokerServer,
  type TestRunner,
} from "./test-support/harness.js";

const GPU = CLUSTERS["team-1"]!.gpu!;
const prefix = testRedisPrefix("broker-backlog");
let ledger: TestLedger;
let srv: BrokerServer;
const runners: TestRunner[] = [];

beforeAll(async () => {
  ledger = createTestLedger();
  // team-1 also has a `cpu` cluster here, which its gpu runner's key may not read.
  const clusters: ClusterResolver = {
    async resolve(teamId, slugs) {
      const found = await staticClusters.resolve(teamId, slugs);
      if (teamId === "team-1" && slugs.includes("cpu")) found.set("cpu", { id: "c-cpu-1", slug: "cpu" });
      return found;
    },
  };
  srv = await startBrokerServer({ prefix, ledger, clusters, leaseDurationMs: 30_000, pollIntervalMs: 300 });
});
afterAll(async () => {
  for (const r of runners) r.kill();
  await srv.close();
  await dropRedisPrefix(prefix);
});

/** The GET KEDA's metrics-api trigger sends: the request as JSON in the query, the key as a bearer token. */
async function backlog(cluster: string, key = TEAM_KEY): Promise<{ status: number; body: Record<string, unknown> }> {
  const message = encodeURIComponent(JSON.stringify({ cluster }));
  const res = await fetch(`${srv.url}/corral.broker.v1.TaskBrokerService/GetClusterBacklog?connect=v1&encoding=json&message=${message}`, {
    headers: { authorization: `Bearer ${key}` },
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

it("counts a cluster's waiting tasks in every band, gated ones included, and the ones runners hold", async () => {
  expect(await backlog(GPU.slug)).toEqual({ status: 200, body: { queued: 0, running: 0, total: 0 } });
  const add = (id: string, fields: { priority?: number; parentId?: string; key?: string } = {}) => {
    const env = ledger.add({ taskId: id, clusterId: GPU.id, name: "backlog", version: "v1.0" });
    if (fields.priority !== undefined) env.priority = fields.priority;
    if (fields.parentId !== undefined) env.parentId = fields.parentId;
    if (fields.key !== undefined) env.concurrency = create(ConcurrencyLimitSchema, { key: fields.key, limit: 1 });
    return env;
  };
  await srv.dispatch.enqueue({
    tasks: [
      add("root"),
      add("urgent", { priority: 7 }),
      add("sub-1", { parentId: "root" }),
      add("sub-2", { parentId: "root", priority: 3 }),
      add("keyed-1", { key: "k" }),
      add("keyed-2", { key: "k" }),
    ],
  });
  expect(await backlog(GPU.slug)).toEqual({ status: 200, body: { queued: 6, running: 0, total: 6 } });

  // A runner with one slot takes one task: it is running now, not waiting.
  const r = connectRunner(runnerTransport(srv.url), hello({ runnerId: "r-backlog", identifiers: ["backlog@v1.0"], slots: 1, clusterSlug: "gpu" }));
  runners.push(r);
  const taken = await r.take("assign");
  expect(await backlog(GPU.slug)).toEqual({ status: 200, body: { queued: 5, running: 1, total: 6 } });
  // The internal queue stats name the cluster's leases too, a gated task's included (no stream's
  // pending list has it), which keeps the registry's provisioning from idling a busy cluster.
  const stats = await srv.dispatch.getQueueStats({ clusterId: GPU.id });
  expect(stats.leases.map((l) => [l.clusterId, Number(l.count)])).toEqual([[GPU.id, 1]]);
  const pending = stats.queues.reduce((n, q) => n + Number(q.pending), 0);
  expect(pending).toBe(taken.task?.concurrency ? 0 : 1);
});

it("answers only for the key's own clusters, and names a bad field", async () => {
  const otherTeams = await backlog(GPU.slug, OTHER_TEAM_KEY);
  expect(otherTeams.status).toBe(404);
  expect(otherTeams.body.code).toBe("not_found");
  // A runner-scoped key sees its own cluster only.
  expect((await backlog("gpu", GPU_RUNNER_KEY)).status).toBe(200);
  expect((await backlog(GPU.slug)).status).toBe(200);
  expect((await backlog("cpu")).status).toBe(200);
  expect((await backlog("cpu", GPU_RUNNER_KEY)).status).toBe(404);
  expect((await backlog("gpu", "corral_nobody_dddddddddddddddddddd")).status).toBe(401);
  const bad = await backlog("no spaces");
  expect(bad.status).toBe(400);
  expect(String(bad.body.message)).toContain("cluster");
});
