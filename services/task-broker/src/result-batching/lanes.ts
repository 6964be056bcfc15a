// The results waiting to leave, in lanes (one per cluster): the one owner of what is queued, which
// lanes have a call in flight, and the round-robin that picks the next call's results. No I/O.
import type { ResultOutcome, TaskResult } from "@corral/proto";
import { resultBytes, subtaskCount } from "./failures.js";

/** A result on its way, answered once with its outcome (or rejected when it cannot be made durable). */
export interface Item {
  result: TaskResult;
  lane: string;
  resolve(outcome: ResultOutcome): void;
  reject(err: unknown): void;
  /** A start folded into its end: skipped when its batch is sent, settled with the end. */
  folded?: boolean;
}

/** What one ReportResults call may carry. */
export interface BatchLimits {
  batchSize: number;
  batchBytes: number;
  maxSubtasks: number;
}

export class ResultLanes {
  /** Results waiting to leave, per lane; the map's order is the round-robin order. */
  #lanes = new Map<string, Item[]>();
  /** Lanes with a call in flight. */
  readonly #busy = new Set<string>();
  #queued = 0;

  /** Results waiting, whatever their lane. */
  get queued(): number {
    return this.#queued;
  }

  push(item: Item): void {
    const lane = this.#lanes.get(item.lane);
    if (lane) lane.push(item);
    else this.#lanes.set(item.lane, [item]);
    this.#queued++;
  }

  /** Results that could leave now: those of lanes without a call in flight. */
  sendable(): number {
    let n = 0;
    for (const [key, items] of this.#lanes) if (!this.#busy.has(key)) n += items.length;
    return n;
  }

  /**
   * The next call's results: round-robin over the lanes without a call in flight, each lane's
   * results in order, up to `batchSize` results, `batchBytes` bytes and `maxSubtasks` subtasks (a
   * bigger result alone). The lanes served are busy until `idle` is called for them.
   */
  take(limits: BatchLimits): { items: Item[]; lanes: string[] } {
    const taken: Item[] = [];
    const from: string[] = [];
    const load = { subtasks: 0, bytes: 0 };
    for (const [key, items] of [...this.#lanes]) {
      if (this.#busy.has(key)) continue;
      const n = takeFromLane(items, taken, load, limits);
      if (n === 0) break;
      from.push(key);
      items.splice(0, n);
      this.#queued -= n;
      // A lane served goes to the back of the round.
      this.#lanes.delete(key);
      if (items.length > 0) this.#lanes.set(key, items);
      const full = taken.length >= limits.batchSize || load.subtasks >= limits.maxSubtasks || load.bytes >= limits.batchBytes;
      if (full || items.length > 0) break;
    }
    for (const key of from) this.#busy.add(key);
    return { items: taken, lanes: from };
  }

  /** The call of these lanes ended. */
  idle(lanes: readonly string[]): void {
    for (const key of lanes) this.#busy.delete(key);
  }

  /** Everything waiting, taken out (on close). */
  drain(): Item[] {
    const left = [...this.#lanes.values()].flat();
    this.#lanes = new Map();
    this.#queued = 0;
    return left;
  }
}

/** Moves the lane's leading results that fit into `taken`; answers how many. */
function takeFromLane(items: readonly Item[], taken: Item[], load: { subtasks: number; bytes: number }, limits: BatchLimits): number {
  let n = 0;
  for (const item of items) {
    if (taken.length >= limits.batchSize) break;
    const size = item.folded ? 0 : subtaskCount(item.result);
    if (size > 0 && load.subtasks + size > limits.maxSubtasks && taken.length > 0) break;
    const itemBytes = item.folded ? 0 : resultBytes(item.result);
    if (taken.length > 0 && load.bytes + itemBytes > limits.batchBytes) break;
    taken.push(item);
    n++;
    load.subtasks += size;
    load.bytes += itemBytes;
    if (load.subtasks >= limits.maxSubtasks) break;
  }
  return n;
}
