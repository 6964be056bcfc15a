// What a fired task receives: the prototype's JSON object with the trigger's fields added, so a
// task reads `input.scheduledTime` (cron) or `input.object` (storage).
import type { StorageObject } from "../ports.js";

export function cronFireInput(prototypeInput: Buffer, scheduledTime: Date): Uint8Array {
  return withFields(prototypeInput, { scheduledTime: scheduledTime.toISOString() });
}

export function storageFireInput(prototypeInput: Buffer, o: StorageObject): Uint8Array {
  return withFields(prototypeInput, {
    object: { location: o.location, key: o.key, size: o.size, lastModified: o.lastModified.toISOString(), version: o.version },
  });
}

function withFields(prototypeInput: Buffer, fields: Record<string, unknown>): Uint8Array {
  const base = JSON.parse(prototypeInput.toString("utf8")) as Record<string, unknown>;
  return Buffer.from(JSON.stringify({ ...base, ...fields }));
}
