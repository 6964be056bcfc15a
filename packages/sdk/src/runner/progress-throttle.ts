// Live progress of running tasks, throttled: a task may change its progress thousands of times a
// second; the runner sends each task's latest progress and display at most once per interval, all
// tasks' updates of one interval together (one Work frame). Only the latest state is kept.
import type { ProgressSnapshot } from "./execute-task.js";

export class ProgressThrottle {
  readonly #pending = new Map<string, () => ProgressSnapshot>();
  readonly #intervalMs: number;
  readonly #send: (key: string, snapshot: ProgressSnapshot) => void;
  #timer: NodeJS.Timeout | undefined;

  /** `send` gets each task's snapshot at the end of an interval in which it changed. */
  constructor(intervalMs: number, send: (key: string, snapshot: ProgressSnapshot) => void) {
    if (!(intervalMs > 0)) throw new RangeError("the progress interval must be above 0 ms");
    this.#intervalMs = intervalMs;
    this.#send = send;
  }

  /** The task `key` changed; `read` gives its progress when the interval ends. */
  note(key: string, read: () => ProgressSnapshot): void {
    this.#pending.set(key, read);
    if (this.#timer) return;
    this.#timer = setTimeout(() => this.flush(), this.#intervalMs);
    this.#timer.unref?.();
  }

  /** The task ended: its result carries its final progress, nothing pending is sent. */
  forget(key: string): void {
    this.#pending.delete(key);
  }

  /** Sends what is pending now. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const [key, read] of pending) this.#send(key, read());
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending.clear();
  }
}
