// What a runner reports about its machine in Hello.
import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { HardwareSchema, type Hardware } from "@corral/proto";

export interface HardwareInput {
  cpuCores?: number;
  gpuCount?: number;
  gpuType?: string;
  memoryBytes?: bigint;
  hostname?: string;
}

/** Where the NVIDIA driver on Linux lists its GPUs: one folder per GPU with an `information` file. */
const nvidiaGpus = "/proc/driver/nvidia/gpus";

/**
 * NVIDIA GPUs the Linux driver lists (count, and the model of the first), or none: Node has no GPU
 * API, and reading the driver's files needs no tool on the PATH.
 */
export function detectNvidiaGpus(dir = nvidiaGpus): { count: number; type: string } {
  let entries: string[];
  try {
    entries = readdirSync(dir).sort();
  } catch {
    return { count: 0, type: "" };
  }
  let type = "";
  for (const e of entries) {
    try {
      const model = /^Model:\s*(.+)$/m.exec(readFileSync(join(dir, e, "information"), "utf8"));
      if (model) {
        type = model[1]!.trim();
        break;
      }
    } catch {
      // not a GPU folder: skip
    }
  }
  return { count: entries.length, type };
}

/**
 * The machine as `os` sees it. GPUs: CORRAL_GPU_COUNT / CORRAL_GPU_TYPE when set, otherwise what
 * the NVIDIA driver lists.
 */
export function detectHardware(overrides: HardwareInput = {}, gpuDir = nvidiaGpus): Hardware {
  let gpuCount = overrides.gpuCount;
  let gpuType = overrides.gpuType ?? process.env.CORRAL_GPU_TYPE;
  if (gpuCount === undefined) {
    const env = process.env.CORRAL_GPU_COUNT;
    if (env !== undefined) {
      const n = Number(env);
      gpuCount = Number.isInteger(n) && n >= 0 ? n : 0;
    } else {
      const found = detectNvidiaGpus(gpuDir);
      gpuCount = found.count;
      gpuType ??= found.type;
    }
  }
  return create(HardwareSchema, {
    cpuCores: overrides.cpuCores ?? os.availableParallelism(),
    gpuCount,
    gpuType: gpuType ?? "",
    memoryBytes: overrides.memoryBytes ?? BigInt(os.totalmem()),
    hostname: (overrides.hostname ?? os.hostname()).slice(0, 253),
    os: os.platform(),
    arch: os.arch(),
  });
}
