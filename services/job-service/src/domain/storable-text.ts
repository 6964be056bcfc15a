// Finds text Postgres cannot store in a broker's task results: a NUL character (0x00) in any string
// (text columns and jsonb both refuse it, failing the whole batch's statement). Checked per entry
// before the transaction, so one bad result fails only its own task.
import type { TaskResult } from "@corral/proto";

/** The path of the first string under `value` holding a NUL (`completed.progress[2].label`), if any. */
export function findNul(value: unknown): string | undefined {
  // Nearly every result holds none: a walk that builds no paths says so, and only a hit is walked again for its path.
  return holdsNul(value) ? nulPath(value, "") : undefined;
}

function holdsNul(value: unknown): boolean {
  if (typeof value === "string") return value.includes("\0");
  if (value === null || typeof value !== "object" || value instanceof Uint8Array) return false;
  if (Array.isArray(value)) {
    for (const inner of value) if (holdsNul(inner)) return true;
    return false;
  }
  for (const key in value) {
    if (key.includes("\0") || holdsNul((value as Record<string, unknown>)[key])) return true;
  }
  return false;
}

function nulPath(value: unknown, path: string): string | undefined {
  if (typeof value === "string") return value.includes("\0") ? path : undefined;
  if (value === null || typeof value !== "object" || value instanceof Uint8Array) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = nulPath(value[i], `${path}[${i}]`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  const record = value as Record<string, unknown>;
  // A protobuf-es oneof ({ case, value }): the proto path names the case, not the oneof.
  if (isOneof(record)) return typeof record.case === "string" ? nulPath(record.value, join(path, snake(record.case))) : undefined;
  for (const [key, inner] of Object.entries(record)) {
    if (key.startsWith("$")) continue;
    const at = inner !== null && typeof inner === "object" && isOneof(inner as Record<string, unknown>) ? path : join(path, snake(key));
    // Map keys (a labels map) are text too.
    if (key.includes("\0")) return at;
    const found = nulPath(inner, at);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** Result index → why it cannot be stored, for the results holding a NUL anywhere. */
export function unstorableResults(results: TaskResult[]): Map<number, string> {
  const out = new Map<number, string>();
  results.forEach((r, index) => {
    const field = findNul(r);
    if (field !== undefined) out.set(index, `${field} contains a NUL character (0x00), which cannot be stored`);
  });
  return out;
}

function isOneof(record: Record<string, unknown>): boolean {
  return !("$typeName" in record) && "case" in record && Object.keys(record).every((k) => k === "case" || k === "value");
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
