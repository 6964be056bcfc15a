// Task starts that have not left yet, so that a start whose end comes first travels inside the end
// (TaskCompleted or TaskFailed `started`): one result instead of two. The one owner of the starts
// held back (`holdMs`) and of the starts queued in a lane until their call leaves.
import type { Item } from "./lanes.js";

interface HeldStart extends Item {
  heldAtMs: number;
}

export class StartHold {
  readonly #holdMs: number;
  readonly #onDue: () => void;
  /** Start reports held back, oldest first (a Map keeps insertion order). */
  #held = new Map<string, HeldStart>();
  /** Start reports queued in a lane, by attempt, until their call leaves. */
  readonly #queued = new Map<string, Item>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  /** `onDue`: a held start's time came (call `releaseDue`, then send). */
  constructor(holdMs: number, onDue: () => void) {
    this.#holdMs = holdMs;
    this.#onDue = onDue;
  }

  /** Starts are held back at all. */
  get holds(): boolean {
    return this.#holdMs > 0;
  }

  /** Starts held back now. */
  get held(): number {
    return this.#held.size;
  }

  /** Holds a start back for `holdMs`. */
  hold(key: string, item: Item, nowMs: number): void {
    this.#held.set(key, { ...item, heldAtMs: nowMs });
    if (!this.#timer) this.#arm(nowMs);
  }

  /** A start went into a lane at once: it may still fold until its call leaves. */
  queued(key: string, item: Item): void {
    this.#queued.set(key, item);
  }

  /** The call carrying this start left: it can no longer fold. */
  sent(key: string): void {
    this.#queued.delete(key);
  }

  /** The start of `key` that has not left yet, taken out to travel inside its end. */
  takeStart(key: string): Item | undefined {
    const start = this.#held.get(key) ?? this.#queued.get(key);
    this.#held.delete(key);
    this.#queued.delete(key);
    return start;
  }

  /** The held starts whose time came, to go into their lanes (they stay foldable until sent). */
  releaseDue(nowMs: number): Item[] {
    const due = nowMs - this.#holdMs;
    const out: Item[] = [];
    for (const [key, item] of this.#held) {
      if (item.heldAtMs > due) break;
      this.#held.delete(key);
      out.push(item);
      this.#queued.set(key, item);
    }
    this.#arm(nowMs);
    return out;
  }

  /** Everything still held back, taken out (on close); the timer stops. */
  close(): Item[] {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const left = [...this.#held.values()];
    this.#held = new Map();
    this.#queued.clear();
    return left;
  }

  /** Wakes up when the oldest held start falls due. */
  #arm(nowMs: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const oldest = this.#held.values().next();
    if (oldest.done || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#onDue();
    }, Math.max(1, oldest.value.heldAtMs + this.#holdMs - nowMs));
    this.#timer.unref();
  }
}
