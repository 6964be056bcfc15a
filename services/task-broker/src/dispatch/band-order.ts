// The order a dispatch group reads priority bands (or claims gated bands) in: highest priority
// first, and every STARVATION_TURN-th turn lowest first, so low priorities are never starved.
import { bandRank } from "../task-identifier.js";

/** Every this many reads of a group with priority bands, the lowest priority is read first. */
export const STARVATION_TURN = 4;

/** `bands` with `band` added in place, highest priority first; false when it was there. */
export function insertBand(bands: string[], band: string): boolean {
  if (bands.includes(band)) return false;
  bands.push(band);
  bands.sort((a, b) => bandRank(b) - bandRank(a) || (a < b ? -1 : 1));
  return true;
}

/** The order of turn `turn` (counted from 1) over `ordered` (highest first). */
export function turnOrder<T>(ordered: readonly T[], turn: number): T[] {
  return turn % STARVATION_TURN === 0 ? [...ordered].reverse() : [...ordered];
}

/** Band queues of a group, highest first, with the count of turns taken over them. */
export interface BandList {
  readonly items: readonly string[];
  /** Adds a band; false when the list has it. */
  add(band: string): boolean;
  /** Takes a turn: the order of this one. */
  nextTurn<T>(ordered: readonly T[]): T[];
}

export function createBandList(): BandList {
  const items: string[] = [];
  let turns = 0;
  return {
    items,
    add: (band) => insertBand(items, band),
    nextTurn(ordered) {
      turns += 1;
      return turnOrder(ordered, turns);
    },
  };
}
