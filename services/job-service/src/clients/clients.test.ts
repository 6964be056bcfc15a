import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { ClusterSchema, ClusterService, DispatchService, ResolveClustersResponseSchema, TaskEnvelopeSchema } from "@corral/proto";
import { createRegistryClient, type RegistryClientOptions } from "@corral/server-kit";
import { describe, expect, it } from "vitest";
import { createBrokerDispatcher } from "./broker-dispatcher.js";
import { createRegistryClusterResolver } from "./registry-cluster-resolver.js";

function registry(known: Record<string, string>, calls: string[][], options: RegistryClientOptions = {}) {
  const transport = createRouterTransport(({ service }) => {
    service(ClusterService, {
      resolveClusters(req) {
        calls.push([...req.slugs]);
        const clusters = req.slugs.map((s) => {
          const id = known[s];
          if (!id) throw new ConnectError(`cluster ${s} not found`, Code.NotFound);
          return create(ClusterSchema, { id, slug: s === "" ? "default-x" : s });
        });
        return create(ResolveClustersResponseSchema, { clusters });
      },
    });
  });
  return createRegistryClient({ ...options, transport });
}

describe("createRegistryClusterResolver", () => {
  it("maps slugs to clusters in order and caches them", async () => {
    const calls: string[][] = [];
    const resolver = createRegistryClusterResolver(registry({ "": "c0", gpu: "c1" }, calls));
    const first = await resolver.resolve("team", ["", "gpu"]);
    expect(first.get("")).toEqual({ id: "c0", slug: "default-x" });
    expect(first.get("gpu")).toEqual({ id: "c1", slug: "gpu" });
    await resolver.resolve("team", ["gpu"]);
    expect(calls).toEqual([["", "gpu"]]);
  });

  it("resolves a slug in use again in the background, before its answer expires", async () => {
    const calls: string[][] = [];
    const known: Record<string, string> = { "": "c0" };
    const resolver = createRegistryClusterResolver(registry(known, calls, { clusterTtlMs: 4_000 }));
    expect((await resolver.resolve("team", [""])).get("")?.id).toBe("c0");
    await new Promise((r) => setTimeout(r, 2_100));
    known[""] = "c0-renamed";
    // Half the TTL has passed: answered from the cache at once, refreshed meanwhile.
    expect((await resolver.resolve("team", [""])).get("")?.id).toBe("c0");
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toEqual([[""], [""]]);
    expect((await resolver.resolve("team", [""])).get("")?.id).toBe("c0-renamed");
    expect(calls).toHaveLength(2);
  });

  it("names the unknown slug in a NotFoundError", async () => {
    const resolver = createRegistryClusterResolver(registry({ "": "c0" }, []));
    await expect(resolver.resolve("team", ["", "nope"])).rejects.toMatchObject({ code: Code.NotFound, id: "nope" });
  });

  it("turns a registry outage into UNAVAILABLE", async () => {
    const transport = createRouterTransport(({ service }) => {
      service(ClusterService, {
        resolveClusters() {
          throw new ConnectError("down", Code.Unavailable);
        },
      });
    });
    const resolver = createRegistryClusterResolver(createRegistryClient({ transport }));
    await expect(resolver.resolve("team", [""])).rejects.toMatchObject({ code: Code.Unavailable });
  });
});

describe("createBrokerDispatcher", () => {
  it("calls Enqueue and Revoke", async () => {
    const seen: string[] = [];
    const transport = createRouterTransport(({ service }) => {
      service(DispatchService, {
        enqueue(req) {
          seen.push(`enqueue ${req.tasks.map((t) => t.taskId).join(",")}`);
          return { enqueuedCount: req.tasks.length };
        },
        revoke(req) {
          seen.push(`revoke ${req.jobId} ${req.taskIds.length} ${req.reason}`);
          return {};
        },
      });
    });
    const d = createBrokerDispatcher(createClient(DispatchService, transport));
    await d.enqueue([create(TaskEnvelopeSchema, { taskId: "t1" }), create(TaskEnvelopeSchema, { taskId: "t2" })]);
    await d.enqueue([]);
    await d.revoke("team", "job", [], "job canceled");
    expect(seen).toEqual(["enqueue t1,t2", "revoke job 0 job canceled"]);
  });
});
