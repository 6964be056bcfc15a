import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { ApiKeyService, ClusterSchema, ClusterService, ResolveClustersResponseSchema, VerifyApiKeyResponseSchema } from "@corral/proto";
import { describe, expect, it } from "vitest";
import { createRegistryClient, type RegistryClientOptions } from "./registry-client.js";

/** A registry that knows `known` slugs (slug → id) and answers UNAVAILABLE while `down.is`. */
function fakeRegistry(known: Record<string, string>, options: RegistryClientOptions = {}) {
  const calls: string[][] = [];
  const down = { is: false };
  const transport = createRouterTransport(({ service }) => {
    service(ClusterService, {
      resolveClusters(req) {
        calls.push([...req.slugs]);
        if (down.is) throw new ConnectError("restarting", Code.Unavailable);
        const clusters = req.slugs.map((s) => {
          const id = known[s];
          if (!id) throw new ConnectError(`cluster ${s} not found`, Code.NotFound);
          return create(ClusterSchema, { id, slug: s });
        });
        return create(ResolveClustersResponseSchema, { clusters });
      },
    });
    service(ApiKeyService, {
      verifyApiKey(req) {
        if (req.key === "good") return create(VerifyApiKeyResponseSchema, { teamId: "team-1", keyId: "k1" });
        if (req.key === "down") throw new ConnectError("restarting", Code.Unavailable);
        throw new ConnectError("unknown key", Code.Unauthenticated);
      },
    });
  });
  return { client: createRegistryClient({ ...options, transport }), calls, down };
}

describe("createRegistryClient: clusters", () => {
  it("leaves a slug that names no cluster out of the answer, and resolves the others", async () => {
    const { client, calls } = fakeRegistry({ gpu: "c1", cpu: "c2" });
    const found = await client.resolveClusters("team", ["gpu", "nope", "cpu"]);
    expect([...found]).toEqual([
      ["gpu", { id: "c1", slug: "gpu" }],
      ["cpu", { id: "c2", slug: "cpu" }],
    ]);
    // The batch failed on the unknown slug, so each was asked alone; the known ones are now cached.
    expect(calls).toEqual([["gpu", "nope", "cpu"], ["gpu"], ["nope"], ["cpu"]]);
    await client.resolveClusters("team", ["gpu", "cpu"]);
    expect(calls).toHaveLength(4);
  });

  it("keys the cache by team", async () => {
    const { client, calls } = fakeRegistry({ gpu: "c1" });
    await client.resolveClusters("team-a", ["gpu"]);
    await client.resolveClusters("team-b", ["gpu"]);
    expect(calls).toEqual([["gpu"], ["gpu"]]);
  });

  it("bridges a registry outage with answers younger than the stale time, and no longer", async () => {
    let t = 0;
    const { client, down } = fakeRegistry({ gpu: "c1" }, { clusterTtlMs: 1_000, clusterStaleMs: 10_000, now: () => t });
    await client.resolveClusters("team", ["gpu"]);
    down.is = true;
    t = 5_000;
    expect((await client.resolveClusters("team", ["gpu"])).get("gpu")?.id).toBe("c1");
    await expect(client.resolveClusters("team", ["gpu", "never-seen"])).rejects.toMatchObject({ code: Code.Unavailable });
    t = 11_001;
    await expect(client.resolveClusters("team", ["gpu"])).rejects.toMatchObject({ code: Code.Unavailable });
  });

  it("without refresh-ahead, asks again only once an answer has expired", async () => {
    let t = 0;
    const { client, calls } = fakeRegistry({ gpu: "c1" }, { clusterTtlMs: 1_000, refreshAhead: false, now: () => t });
    await client.resolveClusters("team", ["gpu"]);
    t = 900;
    await client.resolveClusters("team", ["gpu"]);
    expect(calls).toHaveLength(1);
    t = 1_000;
    await client.resolveClusters("team", ["gpu"]);
    expect(calls).toHaveLength(2);
  });
});

describe("createRegistryClient: API keys", () => {
  it("answers a known key's caller, undefined for an unknown key, and throws when the registry does not answer", async () => {
    const { client } = fakeRegistry({});
    expect(await client.verifyApiKey("good")).toEqual({ kind: "user", teamId: "team-1", keyId: "k1" });
    expect(await client.verifyApiKey("bad")).toBeUndefined();
    await expect(client.verifyApiKey("down")).rejects.toMatchObject({ code: Code.Unavailable });
  });
});
