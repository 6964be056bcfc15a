import { Code, type Client } from "@connectrpc/connect";
import { ClusterService, ConfigurationService, HardwareService, LocationService } from "@corral/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeOf, startRegistryHarness, type RegistryHarness } from "./test-harness.js";

describe("ClusterService", () => {
  let h: RegistryHarness;
  let clusters: Client<typeof ClusterService>;
  let clustersB: Client<typeof ClusterService>;

  beforeAll(async () => {
    h = await startRegistryHarness("clusters");
    clusters = h.client(ClusterService);
    clustersB = h.client(ClusterService, h.teamB.key);
  });
  afterAll(() => h?.close());

  it("gets a cluster by id as well as by slug", async () => {
    const clusters = h.client(ClusterService);
    const { cluster } = await clusters.createCluster({ name: "by id" });
    expect((await clusters.getCluster({ slug: cluster!.id })).cluster?.slug).toBe(cluster!.slug);
    expect(await codeOf(h.client(ClusterService, h.teamB.key).getCluster({ slug: cluster!.id }))).toBe(Code.NotFound);
  });

  it("makes a slug from the name, a dash and 14 base62 characters", async () => {
    const { cluster, created } = await clusters.createCluster({ name: "testing", description: "d" });
    expect(created).toBe(true);
    expect(cluster?.slug).toMatch(/^testing-[A-Za-z0-9]{14}$/);
    expect(cluster?.name).toBe("testing");
    expect(cluster?.description).toBe("d");
    expect(cluster?.teamId).toBe(h.teamA.teamId);
    expect(cluster?.isDefault).toBe(false);
    expect(cluster?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);

    const other = await clusters.createCluster({ name: "Production Jobs!" });
    expect(other.cluster?.slug).toMatch(/^production-jobs-[A-Za-z0-9]{14}$/);
    const odd = await clusters.createCluster({ name: "🚀" });
    expect(odd.cluster?.slug).toMatch(/^cluster-[A-Za-z0-9]{14}$/);
    const long = await clusters.createCluster({ name: "x".repeat(100) });
    expect(long.cluster?.slug.length).toBeLessThanOrEqual(100);
  });

  it("takes a given slug, unique per team", async () => {
    const { cluster } = await clusters.createCluster({ name: "mine", slug: "my-Slug-1" });
    expect(cluster?.slug).toBe("my-Slug-1");
    expect(await codeOf(clusters.createCluster({ name: "again", slug: "my-Slug-1" }))).toBe(Code.AlreadyExists);
    // Another team may use the same slug.
    const b = await clustersB.createCluster({ name: "theirs", slug: "my-Slug-1" });
    expect(b.cluster?.teamId).toBe(h.teamB.teamId);
  });

  it("returns the existing cluster of that name with get_if_exists", async () => {
    const first = await clusters.createCluster({ name: "reuse-me", getIfExists: true });
    expect(first.created).toBe(true);
    const again = await clusters.createCluster({ name: "reuse-me", getIfExists: true });
    expect(again.created).toBe(false);
    expect(again.cluster?.id).toBe(first.cluster?.id);
    // Without the flag a second cluster of the same name is made.
    const second = await clusters.createCluster({ name: "reuse-me" });
    expect(second.created).toBe(true);
    expect(second.cluster?.id).not.toBe(first.cluster?.id);
    // Team B does not see team A's cluster of that name.
    const b = await clustersB.createCluster({ name: "reuse-me", getIfExists: true });
    expect(b.created).toBe(true);
  });

  it("creates one cluster under concurrent get_if_exists calls", async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, () => clusters.createCluster({ name: "racy", getIfExists: true })),
    );
    expect(new Set(results.map((r) => r.cluster?.id)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
  });

  it("creates the default cluster once under 20 concurrent first calls", async () => {
    const { teamId, key } = await h.registry.bootstrap("fresh-team-concurrent");
    const fresh = h.client(ClusterService, key);
    const results = await Promise.all(Array.from({ length: 20 }, () => fresh.getCluster({ slug: "" })));
    const ids = new Set(results.map((r) => r.cluster?.id));
    expect(ids.size).toBe(1);
    expect(results[0]?.cluster?.isDefault).toBe(true);
    expect(results[0]?.cluster?.slug).toMatch(/^default-[A-Za-z0-9]{14}$/);
    const rows = await h.db.selectFrom("clusters").select("id").where("team_id", "=", teamId).execute();
    expect(rows).toHaveLength(1);
    // ResolveClusters with an empty slug is the same default cluster.
    const resolved = await h.serviceClient(ClusterService).resolveClusters({ teamId, slugs: [""] });
    expect(resolved.clusters[0]?.id).toBe(results[0]?.cluster?.id);
  });

  it("gets a cluster by slug, NOT_FOUND for unknown and other teams' slugs", async () => {
    const { cluster } = await clusters.createCluster({ name: "findable" });
    const got = await clusters.getCluster({ slug: cluster!.slug });
    expect(got.cluster?.id).toBe(cluster?.id);
    expect(await codeOf(clusters.getCluster({ slug: "nope-abc" }))).toBe(Code.NotFound);
    expect(await codeOf(clustersB.getCluster({ slug: cluster!.slug }))).toBe(Code.NotFound);
    expect(await codeOf(clustersB.updateCluster({ slug: cluster!.slug, name: "x" }))).toBe(Code.NotFound);
    expect(await codeOf(clustersB.deleteCluster({ slug: cluster!.slug }))).toBe(Code.NotFound);
  });

  it("fills the spec from corral/default when no configuration is named", async () => {
    const { cluster } = await clusters.createCluster({ name: "defaults", spec: { runnerCount: 7 } });
    expect(cluster?.spec?.configuration).toBe("corral/default");
    expect(cluster?.spec?.runnerCount).toBe(7);
    const builtin = await h.client(ConfigurationService).getConfiguration({ name: "corral/default" });
    expect(cluster?.spec?.runnerCpuCores).toBe(builtin.configuration?.spec?.runnerCpuCores);
    expect(cluster?.spec?.runnerMemoryBytes).toBe(builtin.configuration?.spec?.runnerMemoryBytes);
    expect(cluster?.spec?.idleTimeoutSeconds).toBe(builtin.configuration?.spec?.idleTimeoutSeconds);
  });

  it("fills the spec from a named configuration, explicit fields winning", async () => {
    const location = await h.client(LocationService).createLocation({ name: "eu", provider: "aws", region: "eu-west-1" });
    const hardware = await h.client(HardwareService).createHardware({
      name: "gpu-box",
      gpuCount: 4,
      gpuType: "a100",
      cpuCores: 32,
      memoryBytes: 256n * 1024n ** 3n,
    });
    await h.client(ConfigurationService).createConfiguration({
      name: "team/gpu",
      spec: {
        runnerCount: 3,
        runnerGpuCount: 4,
        runnerMemoryBytes: 64n * 1024n ** 3n,
        softwareEnvironment: "ghcr.io/acme/train:1",
        hardwareId: hardware.hardware!.id,
        locationId: location.location!.id,
      },
    });
    const { cluster } = await clusters.createCluster({
      name: "trainer",
      configuration: "team/gpu",
      spec: { runnerCount: 5, idleTimeoutSeconds: 60 },
    });
    expect(cluster?.spec).toMatchObject({
      configuration: "team/gpu",
      runnerCount: 5,
      runnerGpuCount: 4,
      runnerMemoryBytes: 64n * 1024n ** 3n,
      softwareEnvironment: "ghcr.io/acme/train:1",
      idleTimeoutSeconds: 60,
      hardwareId: hardware.hardware!.id,
      locationId: location.location!.id,
    });
    // The configuration may also be named inside the spec.
    const viaSpec = await clusters.createCluster({ name: "trainer-2", spec: { configuration: "team/gpu" } });
    expect(viaSpec.cluster?.spec?.runnerCount).toBe(3);
    // Team B cannot use team A's configuration.
    expect(await codeOf(clustersB.createCluster({ name: "x", configuration: "team/gpu" }))).toBe(Code.NotFound);
  });

  it("answers NOT_FOUND for an unknown configuration, location or hardware profile", async () => {
    expect(await codeOf(clusters.createCluster({ name: "x", configuration: "missing" }))).toBe(Code.NotFound);
    const missingLocation = "0190a4d2-0000-7000-8000-000000000000";
    const err = await clusters.createCluster({ name: "x", locationId: missingLocation }).catch((e: unknown) => e);
    expect((err as { code: Code }).code).toBe(Code.NotFound);
    expect((err as Error).message).toContain(missingLocation);
    expect((err as Error).message).toContain("location");
    expect(await codeOf(clusters.createCluster({ name: "x", spec: { locationId: "not-a-uuid" } }))).toBe(Code.NotFound);
    expect(await codeOf(clusters.createCluster({ name: "x", spec: { hardwareId: missingLocation } }))).toBe(Code.NotFound);
    // Another team's location is unknown here.
    const theirs = await h.client(LocationService, h.teamB.key).createLocation({ name: "b", provider: "gcp" });
    expect(await codeOf(clusters.createCluster({ name: "x", locationId: theirs.location!.id }))).toBe(Code.NotFound);
  });

  it("updates name, description and spec, keeping unset spec fields", async () => {
    const { cluster } = await clusters.createCluster({ name: "before", spec: { runnerCount: 2, softwareEnvironment: "img:1" } });
    const { cluster: updated } = await clusters.updateCluster({
      slug: cluster!.slug,
      name: "after",
      description: "now described",
      spec: { runnerCount: 9 },
    });
    expect(updated?.name).toBe("after");
    expect(updated?.description).toBe("now described");
    expect(updated?.slug).toBe(cluster?.slug);
    expect(updated?.spec?.runnerCount).toBe(9);
    expect(updated?.spec?.softwareEnvironment).toBe("img:1");
    expect(updated!.updateTime!.seconds >= cluster!.updateTime!.seconds).toBe(true);
    expect(await codeOf(clusters.updateCluster({ slug: cluster!.slug, spec: { locationId: "missing" } }))).toBe(
      Code.NotFound,
    );
    expect(await codeOf(clusters.updateCluster({ slug: "missing-x" }))).toBe(Code.NotFound);
  });

  it("deletes clusters but refuses the default one", async () => {
    const { cluster } = await clusters.createCluster({ name: "doomed" });
    await clusters.deleteCluster({ slug: cluster!.slug });
    expect(await codeOf(clusters.getCluster({ slug: cluster!.slug }))).toBe(Code.NotFound);
    expect(await codeOf(clusters.deleteCluster({ slug: cluster!.slug }))).toBe(Code.NotFound);
    const { cluster: def } = await clusters.getCluster({ slug: "" });
    expect(await codeOf(clusters.deleteCluster({ slug: def!.slug }))).toBe(Code.FailedPrecondition);
  });

  it("lists clusters in creation order with a cursor, only the caller's", async () => {
    const { key } = await h.registry.bootstrap("lister-team");
    const lister = h.client(ClusterService, key);
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push((await lister.createCluster({ name: `c${i}` })).cluster!.id);
    const seen: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await lister.listClusters({ pageSize: 2, pageToken });
      expect(page.clusters.length).toBeLessThanOrEqual(2);
      seen.push(...page.clusters.map((c) => c.id));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken !== "");
    // Listing is a first use of the default cluster: it is created then, so it comes last here.
    const { cluster: def } = await lister.getCluster({ slug: "" });
    expect(seen).toEqual([...made, def!.id]);
    expect(pages).toBe(3);
    const all = await lister.listClusters({});
    expect(all.clusters.map((c) => c.id)).toEqual(seen);
    expect(all.nextPageToken).toBe("");
  });

  it("rejects page tokens it did not make", async () => {
    for (const pageToken of ["garbage!", "bm90LWpzb24", Buffer.from('{"a":"x"}').toString("base64url")]) {
      expect(await codeOf(clusters.listClusters({ pageToken }))).toBe(Code.InvalidArgument);
    }
  });

  it("resolves slugs for services only, NOT_FOUND for unknown ones", async () => {
    const { cluster } = await clusters.createCluster({ name: "resolvable" });
    const internal = h.serviceClient(ClusterService);
    const { clusters: resolved } = await internal.resolveClusters({
      teamId: h.teamA.teamId,
      slugs: [cluster!.slug, "", cluster!.slug],
    });
    expect(resolved.map((c) => c.id)).toEqual([cluster!.id, expect.any(String), cluster!.id]);
    expect(resolved[1]?.isDefault).toBe(true);
    expect(await codeOf(internal.resolveClusters({ teamId: h.teamB.teamId, slugs: [cluster!.slug] }))).toBe(
      Code.NotFound,
    );
    expect(await codeOf(internal.resolveClusters({ teamId: "no-such-team", slugs: [""] }))).toBe(Code.NotFound);
    expect(await codeOf(clusters.resolveClusters({ teamId: h.teamA.teamId, slugs: [""] }))).toBe(
      Code.PermissionDenied,
    );
    // The service key has no team: the public RPCs refuse it.
    expect(await codeOf(internal.getCluster({ slug: "" }))).toBe(Code.PermissionDenied);
  });

  it("rejects invalid input for every bounded field", async () => {
    const bad: Array<Parameters<typeof clusters.createCluster>[0]> = [
      { name: "" },
      { name: "x".repeat(101) },
      { name: "x", description: "d".repeat(2001) },
      { name: "x", slug: "has space" },
      { name: "x", slug: "" },
      { name: "x", slug: "s".repeat(101) },
      { name: "x", locationId: "l".repeat(65) },
      { name: "x", configuration: "c".repeat(129) },
      { name: "x", spec: { runnerCount: 100_001 } },
      { name: "x", spec: { runnerCpuCores: 100_001 } },
      { name: "x", spec: { runnerGpuCount: 1025 } },
      { name: "x", spec: { hardwareId: "h".repeat(65) } },
      { name: "x", spec: { softwareEnvironment: "s".repeat(513) } },
      { name: "x", spec: { idleTimeoutSeconds: 31_536_001 } },
      { name: "x", spec: { configuration: "c".repeat(129) } },
      { name: "x", spec: { locationId: "l".repeat(65) } },
    ];
    for (const req of bad) expect(await codeOf(clusters.createCluster(req)), JSON.stringify(req, (_k, v) => (typeof v === "bigint" ? String(v) : v))).toBe(Code.InvalidArgument);
    expect(await codeOf(clusters.getCluster({ slug: "bad slug" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(clusters.getCluster({ slug: "s".repeat(101) }))).toBe(Code.InvalidArgument);
    expect(await codeOf(clusters.updateCluster({ slug: "" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(clusters.updateCluster({ slug: "ok", name: "" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(clusters.updateCluster({ slug: "ok", description: "d".repeat(2001) }))).toBe(Code.InvalidArgument);
    expect(await codeOf(clusters.updateCluster({ slug: "ok", spec: { runnerGpuCount: 2000 } }))).toBe(Code.InvalidArgument);
    expect(await codeOf(clusters.deleteCluster({ slug: "" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(clusters.listClusters({ pageSize: 1001 }))).toBe(Code.InvalidArgument);
    expect(await codeOf(clusters.listClusters({ pageToken: "t".repeat(513) }))).toBe(Code.InvalidArgument);
    const internal = h.serviceClient(ClusterService);
    expect(await codeOf(internal.resolveClusters({ teamId: "", slugs: [] }))).toBe(Code.InvalidArgument);
    expect(await codeOf(internal.resolveClusters({ teamId: h.teamA.teamId, slugs: ["bad slug"] }))).toBe(
      Code.InvalidArgument,
    );
    expect(
      await codeOf(internal.resolveClusters({ teamId: h.teamA.teamId, slugs: Array.from({ length: 1001 }, () => "") })),
    ).toBe(Code.InvalidArgument);
  });
});
