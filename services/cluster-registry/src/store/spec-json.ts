// Specs and hardware in jsonb: uint64 values travel as decimal strings so JSON cannot round them.
import type { SpecFields } from "../spec.js";
import type { StoredSpec } from "./database.js";

export function specToJson(spec: SpecFields): string {
  const { runnerMemoryBytes, ...rest } = spec;
  const stored: StoredSpec = { ...rest };
  if (runnerMemoryBytes !== undefined) stored.runnerMemoryBytes = runnerMemoryBytes.toString();
  return JSON.stringify(stored);
}

export function specFromJson(stored: StoredSpec): SpecFields {
  const { runnerMemoryBytes, ...rest } = stored;
  const spec: SpecFields = { ...rest };
  if (runnerMemoryBytes !== undefined) spec.runnerMemoryBytes = BigInt(runnerMemoryBytes);
  return spec;
}
