// The friendly form of a cluster spec: memory as "16 GiB", camelCase, every field optional.
import { create } from "@bufbuild/protobuf";
import { ClusterSpecSchema, type ClusterSpec } from "@corral/proto";
import { parseMemory, type MemorySize } from "./memory.js";

export interface ClusterSpecInput {
  runnerCount?: number;
  runnerCpuCores?: number;
  runnerGpuCount?: number;
  /** Memory per runner: bytes, or a string such as `"16 GiB"`. */
  runnerMemory?: MemorySize;
  hardwareId?: string;
  /** A container image or a workflow release name. */
  softwareEnvironment?: string;
  idleTimeoutSeconds?: number;
}

export function toClusterSpec(input: ClusterSpecInput | undefined): ClusterSpec | undefined {
  if (input === undefined) return undefined;
  return create(ClusterSpecSchema, {
    runnerCount: input.runnerCount,
    runnerCpuCores: input.runnerCpuCores,
    runnerGpuCount: input.runnerGpuCount,
    runnerMemoryBytes: input.runnerMemory === undefined ? undefined : parseMemory(input.runnerMemory, "spec.runner_memory"),
    hardwareId: input.hardwareId,
    softwareEnvironment: input.softwareEnvironment,
    idleTimeoutSeconds: input.idleTimeoutSeconds,
  });
}
