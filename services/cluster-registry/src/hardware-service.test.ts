import { Code } from "@connectrpc/connect";
import { HardwareService } from "@corral/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeOf, startRegistryHarness, type RegistryHarness } from "./test-harness.js";

describe("HardwareService", () => {
  let h: RegistryHarness;
  beforeAll(async () => {
    h = await startRegistryHarness("hardware");
  });
  afterAll(() => h?.close());

  it("creates, gets and lists hardware profiles, keeping every bit of uint64 memory", async () => {
    const hardware = h.client(HardwareService);
    const huge = 2n ** 64n - 1n;
    const { hardware: created } = await hardware.createHardware({
      name: "gpu-node",
      gpuCount: 4,
      gpuType: "nvidia-a100",
      cpuCores: 64,
      memoryBytes: huge,
    });
    expect(created).toMatchObject({ name: "gpu-node", gpuCount: 4, gpuType: "nvidia-a100", cpuCores: 64, memoryBytes: huge });
    const got = await hardware.getHardware({ id: created!.id });
    expect(got.hardware?.memoryBytes).toBe(huge);
    expect(got.hardware?.createTime).toBeDefined();

    const ids = [created!.id];
    for (let i = 0; i < 3; i++) {
      ids.push((await hardware.createHardware({ name: `cpu-${i}`, cpuCores: 2, memoryBytes: 1n })).hardware!.id);
    }
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await hardware.listHardware({ pageSize: 3, pageToken });
      seen.push(...page.hardware.map((x) => x.id));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(seen).toEqual(ids);
  });

  it("takes a GPU-only entry: name, GPU count and type, with CPU and memory left to the spec", async () => {
    const { hardware } = await h.client(HardwareService).createHardware({ name: "h100x8", gpuCount: 8, gpuType: "H100" });
    expect(hardware).toMatchObject({ name: "h100x8", gpuCount: 8, gpuType: "H100", cpuCores: 0, memoryBytes: 0n });
  });

  it("answers NOT_FOUND for unknown ids and other teams' profiles", async () => {
    const { hardware } = await h.client(HardwareService).createHardware({ name: "mine", cpuCores: 1, memoryBytes: 1n });
    const b = h.client(HardwareService, h.teamB.key);
    expect(await codeOf(b.getHardware({ id: hardware!.id }))).toBe(Code.NotFound);
    expect((await b.listHardware({})).hardware).toEqual([]);
    expect(await codeOf(b.getHardware({ id: "nope" }))).toBe(Code.NotFound);
  });

  it("rejects invalid input for every bounded field", async () => {
    const hardware = h.client(HardwareService);
    const ok = { name: "n", cpuCores: 1, memoryBytes: 1n };
    for (const req of [
      { ...ok, name: "" },
      { ...ok, name: "n".repeat(101) },
      { ...ok, gpuCount: 1025 },
      { ...ok, gpuType: "g".repeat(129) },
      { ...ok, cpuCores: 100_001 },
    ]) {
      expect(await codeOf(hardware.createHardware(req))).toBe(Code.InvalidArgument);
    }
    expect(await codeOf(hardware.getHardware({ id: "" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(hardware.getHardware({ id: "i".repeat(65) }))).toBe(Code.InvalidArgument);
    expect(await codeOf(hardware.listHardware({ pageSize: 1001 }))).toBe(Code.InvalidArgument);
    expect(await codeOf(hardware.listHardware({ pageToken: "x".repeat(513) }))).toBe(Code.InvalidArgument);
  });
});
