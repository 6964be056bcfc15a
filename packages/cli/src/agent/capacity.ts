// What a host offers: CPUs, memory, GPUs and their type, detected from the machine or given by
// `corral agent` flags. A malformed flag is an AgentFlagError naming the flag.
import os from "node:os";
import { create } from "@bufbuild/protobuf";
import { CapacitySchema, type Capacity } from "@corral/proto";
import { detectNvidiaGpus, parseMemory, ValidationError } from "@corral/sdk";

/** A flag of `corral agent` that cannot be read; the message starts with the flag. */
export class AgentFlagError extends Error {
  constructor(
    readonly flag: string,
    detail: string,
  ) {
    super(`${flag}: ${detail}`);
    this.name = "AgentFlagError";
  }
}

export interface CapacityFlags {
  cpus?: string;
  memory?: string;
  gpus?: string;
  gpuType?: string;
}

function wholeNumber(flag: string, text: string, min: number, max: number): number {
  if (!/^\d+$/.test(text.trim())) throw new AgentFlagError(flag, `${JSON.stringify(text)} is not a whole number`);
  const n = Number(text.trim());
  if (n < min || n > max) throw new AgentFlagError(flag, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

/**
 * The host's capacity: each flag given wins, the rest is detected (os.availableParallelism(),
 * os.totalmem(), the NVIDIA driver's GPU list).
 */
export function resolveCapacity(flags: CapacityFlags, gpuDir?: string): Capacity {
  const cpuCores = flags.cpus === undefined ? os.availableParallelism() : wholeNumber("--cpus", flags.cpus, 1, 100_000);
  let memoryBytes: bigint;
  if (flags.memory === undefined) {
    memoryBytes = BigInt(os.totalmem());
  } else {
    try {
      memoryBytes = parseMemory(flags.memory, "--memory");
    } catch (err) {
      if (err instanceof ValidationError) throw new AgentFlagError("--memory", `cannot read ${JSON.stringify(flags.memory)} as a size (try "32GiB" or "512MB")`);
      throw err;
    }
    if (memoryBytes === 0n) throw new AgentFlagError("--memory", "must be more than 0 bytes");
  }
  const gpuCount = flags.gpus === undefined ? undefined : wholeNumber("--gpus", flags.gpus, 0, 1024);
  if (flags.gpuType !== undefined && flags.gpuType.length > 128) throw new AgentFlagError("--gpu-type", "is longer than 128 characters");
  const found = gpuCount === undefined ? detectNvidiaGpus(gpuDir) : undefined;
  return create(CapacitySchema, {
    cpuCores,
    memoryBytes,
    gpuCount: gpuCount ?? found!.count,
    gpuType: flags.gpuType ?? found?.type ?? "",
  });
}

/** `--label k=v` pairs, checked against the contract's limits. */
export function parseLabels(pairs: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf("=");
    if (i <= 0) throw new AgentFlagError("--label", `expected key=value, got ${JSON.stringify(p)}`);
    const key = p.slice(0, i);
    const value = p.slice(i + 1);
    if (key.length > 128) throw new AgentFlagError("--label", `key ${JSON.stringify(key.slice(0, 20))}… is longer than 128 characters`);
    if (value.length > 512) throw new AgentFlagError("--label", `value of ${key} is longer than 512 characters`);
    labels[key] = value;
  }
  if (Object.keys(labels).length > 64) throw new AgentFlagError("--label", "at most 64 labels");
  return labels;
}

/** The host name the agent registers: the hostname unless given, checked like AgentHello.name. */
export function resolveHostName(name: string | undefined): string {
  const n = name ?? os.hostname();
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(n) || n.length > 253) {
    throw new AgentFlagError("--name", `${JSON.stringify(n)} is not a host name (letters, digits, ".", "_", "-"; at most 253)`);
  }
  return n;
}
