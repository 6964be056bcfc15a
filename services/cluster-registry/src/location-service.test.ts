import { Code, ConnectError } from "@connectrpc/connect";
import { ClusterService, ConfigurationService, HardwareService, LocationService } from "@corral/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeOf, startRegistryHarness, type RegistryHarness } from "./test-harness.js";

describe("LocationService", () => {
  let h: RegistryHarness;
  beforeAll(async () => {
    h = await startRegistryHarness("locations");
  });
  afterAll(() => h?.close());

  it("creates, updates, gets and lists locations", async () => {
    const locations = h.client(LocationService);
    const { location } = await locations.createLocation({ name: "us-west", provider: "aws", region: "us-west-2" });
    expect(location).toMatchObject({ name: "us-west", provider: "aws", region: "us-west-2" });
    expect(location?.id).toMatch(/^[0-9a-f-]{36}$/);

    const { location: updated } = await locations.updateLocation({ id: location!.id, name: "us-west-prod" });
    expect(updated).toMatchObject({ id: location!.id, name: "us-west-prod", provider: "aws", region: "us-west-2" });
    const { location: moved } = await locations.updateLocation({ id: location!.id, provider: "gcp", region: "" });
    expect(moved).toMatchObject({ name: "us-west-prod", provider: "gcp", region: "" });

    const got = await locations.getLocation({ id: location!.id });
    expect(got.location).toMatchObject({ name: "us-west-prod", provider: "gcp" });

    const ids = [location!.id];
    for (let i = 0; i < 4; i++) ids.push((await locations.createLocation({ name: `l${i}`, provider: "p" })).location!.id);
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await locations.listLocations({ pageSize: 2, pageToken });
      seen.push(...page.locations.map((l) => l.id));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(seen).toEqual(ids);
  });

  it("answers NOT_FOUND for unknown ids and other teams' locations", async () => {
    const { location } = await h.client(LocationService).createLocation({ name: "mine", provider: "aws" });
    const b = h.client(LocationService, h.teamB.key);
    expect(await codeOf(b.getLocation({ id: location!.id }))).toBe(Code.NotFound);
    expect(await codeOf(b.updateLocation({ id: location!.id, name: "stolen" }))).toBe(Code.NotFound);
    expect((await b.listLocations({})).locations.map((l) => l.id)).not.toContain(location!.id);
    expect(await codeOf(b.getLocation({ id: "not-a-uuid" }))).toBe(Code.NotFound);
    expect(await codeOf(b.getLocation({ id: "0190a4d2-0000-7000-8000-000000000000" }))).toBe(Code.NotFound);
    const still = await h.client(LocationService).getLocation({ id: location!.id });
    expect(still.location?.name).toBe("mine");
  });

  it("deletes locations and hardware profiles no spec names, and refuses the others", async () => {
    const locations = h.client(LocationService);
    const hardware = h.client(HardwareService);
    const { location } = await locations.createLocation({ name: "doomed", provider: "aws" });
    const { location: used } = await locations.createLocation({ name: "used", provider: "aws" });
    const { hardware: box } = await hardware.createHardware({ name: "box", gpuCount: 0, gpuType: "", cpuCores: 2, memoryBytes: 1n << 30n });

    await locations.deleteLocation({ id: location!.id });
    expect(await codeOf(locations.getLocation({ id: location!.id }))).toBe(Code.NotFound);
    expect(await codeOf(locations.deleteLocation({ id: location!.id }))).toBe(Code.NotFound);

    // A cluster names `used`, a configuration names `box`: neither can go.
    const { cluster } = await h.client(ClusterService).createCluster({ name: "pinned", locationId: used!.id });
    await h.client(ConfigurationService).createConfiguration({ name: "team/box", spec: { hardwareId: box!.id } });
    const inUse = await locations.deleteLocation({ id: used!.id }).catch((e: unknown) => ConnectError.from(e));
    expect(inUse).toMatchObject({ code: Code.FailedPrecondition });
    expect((inUse as ConnectError).rawMessage).toContain(`cluster ${cluster!.slug}`);
    const boxInUse = await hardware.deleteHardware({ id: box!.id }).catch((e: unknown) => ConnectError.from(e));
    expect(boxInUse).toMatchObject({ code: Code.FailedPrecondition });
    expect((boxInUse as ConnectError).rawMessage).toContain("configuration team/box");
    expect((await locations.getLocation({ id: used!.id })).location?.name).toBe("used");

    // Once no spec names them, they go.
    await h.client(ClusterService).updateCluster({ slug: cluster!.slug, spec: { locationId: "" } });
    await h.client(ConfigurationService).deleteConfiguration({ name: "team/box" });
    await locations.deleteLocation({ id: used!.id });
    await hardware.deleteHardware({ id: box!.id });
    expect(await codeOf(hardware.getHardware({ id: box!.id }))).toBe(Code.NotFound);

    // Another team's, a malformed id, an empty one.
    const { location: theirs } = await locations.createLocation({ name: "kept", provider: "aws" });
    const b = h.client(LocationService, h.teamB.key);
    expect(await codeOf(b.deleteLocation({ id: theirs!.id }))).toBe(Code.NotFound);
    expect(await codeOf(b.deleteLocation({ id: "not-a-uuid" }))).toBe(Code.NotFound);
    expect(await codeOf(locations.deleteLocation({ id: "" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(h.client(HardwareService, h.teamB.key).deleteHardware({ id: "x" }))).toBe(Code.NotFound);
    expect((await locations.getLocation({ id: theirs!.id })).location?.name).toBe("kept");
  });

  it("accepts locations and hardware profiles by name wherever an id goes, stored by id", async () => {
    const locations = h.client(LocationService);
    const hardware = h.client(HardwareService);
    const { location } = await locations.createLocation({ name: "by-name-eu", provider: "aws", region: "eu-west-1" });
    const { hardware: box } = await hardware.createHardware({ name: "by-name-box", gpuCount: 1, gpuType: "a100", cpuCores: 8, memoryBytes: 1n << 34n });
    expect((await locations.getLocation({ id: "by-name-eu" })).location?.id).toBe(location!.id);
    expect((await hardware.getHardware({ id: "by-name-box" })).hardware?.id).toBe(box!.id);

    const { cluster } = await h.client(ClusterService).createCluster({ name: "named refs", locationId: "by-name-eu", spec: { hardwareId: "by-name-box" } });
    expect(cluster?.spec).toMatchObject({ locationId: location!.id, hardwareId: box!.id });
    const { configuration } = await h.client(ConfigurationService).createConfiguration({ name: "team/named", spec: { hardwareId: "by-name-box" } });
    expect(configuration?.spec?.hardwareId).toBe(box!.id);
    expect(await codeOf(h.client(ClusterService).createCluster({ name: "x", locationId: "no-such-place" }))).toBe(Code.NotFound);

    // A name two locations share says which only by id.
    await locations.createLocation({ name: "twice", provider: "p" });
    await locations.createLocation({ name: "twice", provider: "q" });
    expect(await codeOf(locations.getLocation({ id: "twice" }))).toBe(Code.FailedPrecondition);

    await h.client(ClusterService).deleteCluster({ slug: cluster!.slug });
    await h.client(ConfigurationService).deleteConfiguration({ name: "team/named" });
    await locations.deleteLocation({ id: "by-name-eu" });
    await hardware.deleteHardware({ id: "by-name-box" });
    expect(await codeOf(locations.getLocation({ id: location!.id }))).toBe(Code.NotFound);
  });

  it("rejects invalid input for every bounded field", async () => {
    const locations = h.client(LocationService);
    const bad = [
      { name: "", provider: "p" },
      { name: "n".repeat(101), provider: "p" },
      { name: "n", provider: "" },
      { name: "n", provider: "p".repeat(101) },
      { name: "n", provider: "p", region: "r".repeat(101) },
    ];
    for (const req of bad) expect(await codeOf(locations.createLocation(req)), JSON.stringify(req)).toBe(Code.InvalidArgument);
    const id = "0190a4d2-0000-7000-8000-000000000000";
    for (const req of [
      { id: "" },
      { id: "i".repeat(65) },
      { id, name: "" },
      { id, name: "n".repeat(101) },
      { id, provider: "" },
      { id, provider: "p".repeat(101) },
      { id, region: "r".repeat(101) },
    ]) {
      expect(await codeOf(locations.updateLocation(req)), JSON.stringify(req)).toBe(Code.InvalidArgument);
    }
    expect(await codeOf(locations.getLocation({ id: "" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(locations.getLocation({ id: "i".repeat(65) }))).toBe(Code.InvalidArgument);
    expect(await codeOf(locations.listLocations({ pageSize: 1001 }))).toBe(Code.InvalidArgument);
    expect(await codeOf(locations.listLocations({ pageToken: "x".repeat(513) }))).toBe(Code.InvalidArgument);
    expect(await codeOf(locations.listLocations({ pageToken: "eyJhIjoxfQ" }))).toBe(Code.InvalidArgument);
  });
});
