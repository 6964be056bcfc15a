// A cluster spec in the domain: every field optional, so a spec can be layered over another
// (configuration first, then what the caller set explicitly).
export interface SpecFields {
  runnerCount?: number;
  runnerCpuCores?: number;
  runnerGpuCount?: number;
  runnerMemoryBytes?: bigint;
  hardwareId?: string;
  softwareEnvironment?: string;
  idleTimeoutSeconds?: number;
  configuration?: string;
  locationId?: string;
}

const FIELDS = [
  "runnerCount",
  "runnerCpuCores",
  "runnerGpuCount",
  "runnerMemoryBytes",
  "hardwareId",
  "softwareEnvironment",
  "idleTimeoutSeconds",
  "configuration",
  "locationId",
] as const satisfies readonly (keyof SpecFields)[];

/** `base` with every field that `override` sets replaced. */
export function mergeSpec(base: SpecFields, override: SpecFields): SpecFields {
  const out: SpecFields = { ...base };
  for (const field of FIELDS) {
    const value = override[field];
    if (value !== undefined) (out as Record<string, unknown>)[field] = value;
  }
  return out;
}

/** Only the fields that are set (a proto message carries explicit `undefined`s). */
export function pickSpec(spec: Partial<Record<keyof SpecFields, unknown>> | undefined): SpecFields {
  const out: SpecFields = {};
  if (!spec) return out;
  for (const field of FIELDS) {
    const value = spec[field];
    if (value !== undefined) (out as Record<string, unknown>)[field] = value;
  }
  return out;
}
