// clusters().create with wait and shutdownOnClose, waitReady's typed timeout error, stop and start,
// against an in-process router.
import { describe, expect, it } from "vitest";
import { createRouterTransport, type ConnectRouter } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ClusterSchema, ClusterService, ClusterState } from "@corral/proto";
import { Client } from "./client.js";
import { ClusterNotReadyError } from "./errors.js";

function fixture(states: Array<MessageInitShape<typeof ClusterSchema>>, existing = false) {
  const calls: string[] = [];
  const routes = (router: ConnectRouter) =>
    router.service(ClusterService, {
      createCluster: (req) => {
        calls.push(`create ${req.name} getIfExists=${req.getIfExists}`);
        return { cluster: { slug: "etl-AAAA", name: req.name, state: ClusterState.PENDING }, created: !existing };
      },
      getCluster: (req) => {
        calls.push(`get ${req.slug}`);
        return { cluster: { slug: req.slug, name: "etl", ...(states.length > 1 ? states.shift()! : states[0]!) } };
      },
      stopCluster: (req) => {
        calls.push(`stop ${req.slug}`);
        return { cluster: { slug: req.slug, state: ClusterState.STOPPING } };
      },
      startCluster: (req) => {
        calls.push(`start ${req.slug}`);
        return { cluster: { slug: req.slug, state: ClusterState.PROVISIONING } };
      },
    });
  return { calls, client: new Client({ transport: createRouterTransport(routes) }) };
}

describe("clusters().create with wait", () => {
  it("resolves once the cluster is READY, reporting progress as runners come up", async () => {
    const { client } = fixture([
      { state: ClusterState.PROVISIONING, desiredRunners: 3, runningRunners: 1 },
      { state: ClusterState.PROVISIONING, desiredRunners: 3, runningRunners: 1 },
      { state: ClusterState.READY, desiredRunners: 3, runningRunners: 3 },
    ]);
    const seen: number[] = [];
    const c = await client.clusters().create("etl", {
      spec: { runnerCount: 3, runnerCpuCores: 2, runnerMemory: "4 GiB" },
      wait: true,
      onProgress: (x) => seen.push(x.runningRunners),
    });
    expect(c.state).toBe(ClusterState.READY);
    expect(seen).toEqual([1, 3]); // unchanged states are not repeated
  });

  it("fails with ClusterNotReadyError carrying the state reason after its timeout", async () => {
    const { client } = fixture([{ state: ClusterState.DEGRADED, desiredRunners: 5, runningRunners: 4, stateReason: "InsufficientCapacity: no host has 2 free CPUs" }]);
    const err = await client.clusters().create("etl", { spec: { runnerCount: 5 }, wait: true, timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClusterNotReadyError);
    expect((err as ClusterNotReadyError).cluster.stateReason).toContain("InsufficientCapacity");
    expect((err as Error).message).toContain("degraded, 4 of 5 runners running");
  });

  it("answers a cluster whose runners are started by hand at once", async () => {
    const { client } = fixture([{ state: ClusterState.UNSPECIFIED }]);
    expect((await client.clusters().create("manual", { wait: true })).state).toBe(ClusterState.UNSPECIFIED);
  });
});

describe("shutdownOnClose", () => {
  it("close() stops a cluster this call created, once", async () => {
    const { client, calls } = fixture([{ state: ClusterState.READY }]);
    const c = await client.clusters().create("etl", { spec: { runnerCount: 1 }, wait: true, shutdownOnClose: true });
    expect(c.created).toBe(true);
    await c.close();
    await c.close();
    expect(calls.filter((x) => x.startsWith("stop"))).toEqual(["stop etl-AAAA"]);
    // The handle is still the Cluster message: close is not one of its fields.
    expect(Object.keys(c)).not.toContain("close");
  });

  it("close() leaves alone a cluster getIfExists found (it belongs to whoever started it)", async () => {
    const { client, calls } = fixture([{ state: ClusterState.READY }], true);
    const c = await client.clusters().create("etl", { getIfExists: true, shutdownOnClose: true });
    expect(c.created).toBe(false);
    await c.close();
    expect(calls.some((x) => x.startsWith("stop"))).toBe(false);
  });

  it("without shutdownOnClose close() does nothing; with it, `await using` stops the cluster", async () => {
    const { client, calls } = fixture([{ state: ClusterState.READY }]);
    await (await client.clusters().create("etl")).close();
    expect(calls.some((x) => x.startsWith("stop"))).toBe(false);
    {
      const c = await client.clusters().create("etl", { shutdownOnClose: true });
      await c[Symbol.asyncDispose]();
    }
    expect(calls.filter((x) => x.startsWith("stop"))).toEqual(["stop etl-AAAA"]);
  });

  it("a failed wait stops the cluster it would stop on close", async () => {
    const { client, calls } = fixture([{ state: ClusterState.PROVISIONING }]);
    await expect(client.clusters().create("etl", { wait: true, timeoutMs: 100, shutdownOnClose: true })).rejects.toBeInstanceOf(ClusterNotReadyError);
    expect(calls).toContain("stop etl-AAAA");
  });
});

describe("stop and start", () => {
  it("start with wait resolves once READY", async () => {
    const { client, calls } = fixture([{ state: ClusterState.PROVISIONING }, { state: ClusterState.READY }]);
    expect((await client.clusters().stop("etl-AAAA")).state).toBe(ClusterState.STOPPING);
    expect((await client.clusters().start("etl-AAAA", { wait: true })).state).toBe(ClusterState.READY);
    expect(calls.slice(0, 2)).toEqual(["stop etl-AAAA", "start etl-AAAA"]);
  });
});
