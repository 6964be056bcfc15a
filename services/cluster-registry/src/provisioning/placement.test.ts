import { describe, expect, it } from "vitest";
import { planPlacement, type ClusterView, type HostView, type PlacedRunner, type Resources } from "./placement.js";

const GIB = 1024n ** 3n;
const need = (cpuCores: number, gpuCount = 0, gpuType = ""): Resources => ({ cpuCores, memoryBytes: 1n * GIB, gpuCount, gpuType });
const host = (id: string, cpuCores: number, extra: Partial<HostView> = {}): HostView => ({
  id,
  name: id,
  locationId: null,
  capacity: { cpuCores, memoryBytes: 64n * GIB, gpuCount: 0, gpuType: "" },
  accepting: true,
  ...extra,
});
const cluster = (id: string, desired: number, n: Resources, extra: Partial<ClusterView> = {}): ClusterView => ({
  id,
  locationId: null,
  locationName: "",
  desired,
  need: n,
  ...extra,
});
const runner = (runnerId: string, clusterId: string, hostId: string, n: Resources, stopping = false): PlacedRunner => ({
  runnerId,
  clusterId,
  hostId,
  need: n,
  stopping,
});

describe("planPlacement", () => {
  it("spreads a cluster's runners across hosts, least loaded first", () => {
    const plan = planPlacement([cluster("c", 3, need(2))], [host("h1", 4), host("h2", 4)], []);
    expect(plan.launches.map((l) => l.hostId).sort()).toEqual(["h1", "h1", "h2"]);
    expect(plan.outcomes.get("c")).toEqual({ placed: 3, reason: "" });
  });

  it("places only on accepting hosts of the cluster's location", () => {
    const hosts = [host("west", 8, { locationId: "loc-w" }), host("east", 8, { locationId: "loc-e" }), host("off", 8, { locationId: "loc-w", accepting: false })];
    const plan = planPlacement([cluster("c", 2, need(1), { locationId: "loc-w", locationName: "us-west" })], hosts, []);
    expect(plan.launches.map((l) => l.hostId)).toEqual(["west", "west"]);
  });

  it("a cluster without a location may use any host", () => {
    const hosts = [host("a", 2, { locationId: "loc-w" }), host("b", 2, { locationId: "loc-e" })];
    const plan = planPlacement([cluster("c", 2, need(2))], hosts, []);
    expect(plan.launches.map((l) => l.hostId).sort()).toEqual(["a", "b"]);
  });

  it("says how many runners were placed and which resource no host in the location has", () => {
    const plan = planPlacement(
      [cluster("c", 5, need(4), { locationId: "loc-w", locationName: "us-west" })],
      [host("h1", 8, { locationId: "loc-w" })],
      [],
    );
    expect(plan.launches).toHaveLength(2);
    expect(plan.outcomes.get("c")?.reason).toBe("2 of 5 runners placed: no host in us-west has 4 free CPUs");
  });

  it("names GPUs when GPUs are what is missing", () => {
    const plan = planPlacement([cluster("c", 1, need(1, 2, "nvidia-a100"))], [host("h1", 32)], []);
    expect(plan.launches).toEqual([]);
    expect(plan.outcomes.get("c")?.reason).toBe("0 of 1 runners placed: no host has 2 free nvidia-a100 GPUs");
  });

  it("places GPU runners on GPU hosts of the right type and keeps other runners off them", () => {
    const gpu = host("gpu", 16, { capacity: { cpuCores: 16, memoryBytes: 64n * GIB, gpuCount: 2, gpuType: "nvidia-a100" } });
    const plan = planPlacement([cluster("g", 2, need(2, 1, "nvidia-a100")), cluster("c", 1, need(2))], [gpu, host("cpu", 4)], []);
    expect(plan.launches.filter((l) => l.clusterId === "g").map((l) => l.hostId)).toEqual(["gpu", "gpu"]);
    expect(plan.launches.filter((l) => l.clusterId === "c").map((l) => l.hostId)).toEqual(["cpu"]);
  });

  it("says when no host is online in the location", () => {
    const plan = planPlacement([cluster("c", 1, need(1), { locationId: "loc-w", locationName: "us-west" })], [host("h", 4)], []);
    expect(plan.outcomes.get("c")?.reason).toBe("0 of 1 runners placed: no online host in us-west");
  });

  it("counts placed and stopping runners against free capacity", () => {
    const placed = [runner("r1", "c", "h1", need(2)), runner("r2", "other", "h1", need(2), true)];
    const plan = planPlacement([cluster("c", 2, need(2))], [host("h1", 4), host("h2", 2)], placed);
    expect(plan.launches.map((l) => l.hostId)).toEqual(["h2"]);
  });

  it("stops surplus runners from the hosts holding most of the cluster", () => {
    const placed = [runner("a", "c", "h1", need(1)), runner("b", "c", "h1", need(1)), runner("x", "c", "h2", need(1))];
    const plan = planPlacement([cluster("c", 1, need(1))], [host("h1", 4), host("h2", 4)], placed);
    expect(plan.stops).toHaveLength(2);
    expect(plan.stops).not.toContain("x");
    expect(plan.launches).toEqual([]);
  });

  it("a runner whose host is gone is stopped and replaced", () => {
    const plan = planPlacement([cluster("c", 1, need(1))], [host("h2", 4)], [runner("lost", "c", "h1", need(1))]);
    expect(plan.stops).toEqual(["lost"]);
    expect(plan.launches.map((l) => l.hostId)).toEqual(["h2"]);
  });

  it("a second pass over its own result changes nothing", () => {
    const hosts = [host("h1", 4), host("h2", 4)];
    const clusters = [cluster("c", 3, need(2))];
    const first = planPlacement(clusters, hosts, []);
    const placed = first.launches.map((l, i) => runner(`r${i}`, l.clusterId, l.hostId, l.need));
    const second = planPlacement(clusters, hosts, placed);
    expect(second.launches).toEqual([]);
    expect(second.stops).toEqual([]);
  });
});
