// What a runner reports about its machine in Hello.
import os from "node:os";
import { create } from "@bufbuild/protobuf";
import { HardwareSchema, type Hardware } from "@corral/proto";

export interface HardwareInput {
  cpuCores?: number;
  gpuCount?: number;
  gpuType?: string;
  memoryBytes?: bigint;
  hostname?: string;
}

/** The machine as `os` sees it; GPUs from CORRAL_GPU_COUNT / CORRAL_GPU_TYPE (Node cannot see them). */
export function detectHardware(overrides: HardwareInput = {}): Hardware {
  const gpuCount = Number(process.env.CORRAL_GPU_COUNT ?? 0);
  return create(HardwareSchema, {
    cpuCores: overrides.cpuCores ?? os.availableParallelism(),
    gpuCount: overrides.gpuCount ?? (Number.isInteger(gpuCount) && gpuCount >= 0 ? gpuCount : 0),
    gpuType: overrides.gpuType ?? process.env.CORRAL_GPU_TYPE ?? "",
    memoryBytes: overrides.memoryBytes ?? BigInt(os.totalmem()),
    hostname: (overrides.hostname ?? os.hostname()).slice(0, 253),
    os: os.platform(),
    arch: os.arch(),
  });
}
