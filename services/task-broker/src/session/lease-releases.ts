// Releases of leases whose results became durable: those of one turn of the event loop go to
// Redis in one pipeline. The one owner of the batch being gathered.
import type { LeaseKey, LeaseStore } from "../redis/lease-store.js";

export interface LeaseReleases {
  /** Releases the lease; true when its token still matched. */
  complete(key: LeaseKey): Promise<boolean>;
}

export function createLeaseReleases(leases: Pick<LeaseStore, "complete">): LeaseReleases {
  let gathering: { keys: LeaseKey[]; done: Promise<boolean[]> } | undefined;
  return {
    complete(key) {
      if (!gathering) {
        const batch: { keys: LeaseKey[]; done: Promise<boolean[]> } = { keys: [], done: Promise.resolve([]) };
        batch.done = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
          gathering = undefined;
          return leases.complete(batch.keys);
        });
        gathering = batch;
      }
      const index = gathering.keys.push(key) - 1;
      return gathering.done.then((released) => released[index] ?? false);
    },
  };
}
