// Entries a dispatch group read (a read returns up to COUNT per stream) that no session had credit
// for yet: handed out when credit opens, or re-queued when held too long.
import type { StreamEntry } from "../redis/queue-store.js";

export interface EntryBuffer {
  readonly size: number;
  /** Keeps `entries` for later. */
  hold(entries: StreamEntry[]): void;
  /** Empties the buffer, returning what it held. */
  takeAll(): StreamEntry[];
  /** The buffer has held entries for at least `ms` (since it was last empty). */
  heldFor(ms: number): boolean;
}

export function createEntryBuffer(): EntryBuffer {
  const entries: StreamEntry[] = [];
  let bufferedAtMs = 0;
  return {
    get size() {
      return entries.length;
    },
    hold(more) {
      if (more.length === 0) return;
      if (entries.length === 0) bufferedAtMs = Date.now();
      entries.push(...more);
    },
    takeAll() {
      return entries.splice(0);
    },
    heldFor(ms) {
      return entries.length > 0 && Date.now() - bufferedAtMs >= ms;
    },
  };
}
