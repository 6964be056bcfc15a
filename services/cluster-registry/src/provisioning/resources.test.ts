// What a runner of a cluster needs, from its spec and the hardware profile it names: the profile
// wins for what it names; a GPU-only profile leaves CPU and memory to the spec.
import { describe, expect, it } from "vitest";
import { resourcesOf } from "./reconciler.js";

const spec = { runnerCpuCores: 4, runnerMemoryBytes: 8n * 1024n ** 3n, runnerGpuCount: 0 };

describe("resourcesOf", () => {
  it("takes CPU, memory and GPUs from a full profile", () => {
    expect(resourcesOf(spec, { cpu_cores: 16, memory_bytes: "1024", gpu_count: 2, gpu_type: "A100" })).toEqual({
      cpuCores: 16,
      memoryBytes: 1024n,
      gpuCount: 2,
      gpuType: "A100",
    });
  });

  it("keeps the spec's CPU and memory under a GPU-only profile", () => {
    expect(resourcesOf(spec, { cpu_cores: 0, memory_bytes: "0", gpu_count: 8, gpu_type: "H100" })).toEqual({
      cpuCores: 4,
      memoryBytes: 8n * 1024n ** 3n,
      gpuCount: 8,
      gpuType: "H100",
    });
    expect(resourcesOf({}, { cpu_cores: 0, memory_bytes: "0", gpu_count: 1, gpu_type: "T4" })).toEqual({ cpuCores: 1, memoryBytes: 0n, gpuCount: 1, gpuType: "T4" });
  });
});
