// Whether results are stalled: pending with none delivered to job-service for longer than the
// stall timeout (the broker is then not ready). The one owner of when results were last delivered
// and when they started to be pending.
import type { Logger } from "pino";

/** Stalled now, and when to look again if nothing else happens (undefined: no need). */
export function stallState(pending: number, nowMs: number, sinceMs: number, timeoutMs: number): { stalled: boolean; recheckInMs?: number } {
  if (pending === 0) return { stalled: false };
  if (nowMs - sinceMs > timeoutMs) return { stalled: true };
  return { stalled: false, recheckInMs: sinceMs + timeoutMs - nowMs + 1 };
}

export interface StallWatchOptions {
  timeoutMs: number;
  /** Results pending now. */
  pending(): number;
  logger: Logger;
  onChange?(stalled: boolean): void;
}

export class StallWatch {
  readonly #options: StallWatchOptions;
  /** When a ReportResults call last succeeded, and when results last started to be pending. */
  #deliveredAtMs = 0;
  #busySinceMs = 0;
  #stalled = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: StallWatchOptions) {
    this.#options = options;
  }

  get stalled(): boolean {
    return this.#stalled;
  }

  /** Results start to be pending (none were). */
  busyFrom(nowMs: number): void {
    this.#busySinceMs = nowMs;
  }

  /** A call succeeded. */
  delivered(nowMs: number): void {
    this.#deliveredAtMs = nowMs;
    if (this.#stalled) this.check();
  }

  /** Starts watching when it is not already (a result was submitted). */
  watch(): void {
    if (!this.#timer && !this.#stalled) this.check();
  }

  /** Re-evaluates the stall state, and wakes up again when it would change without a call. */
  check(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const pending = this.#options.pending();
    const since = Math.max(this.#deliveredAtMs, this.#busySinceMs);
    const now = Date.now();
    const state = stallState(pending, now, since, this.#options.timeoutMs);
    if (state.stalled !== this.#stalled) {
      this.#stalled = state.stalled;
      if (state.stalled) this.#options.logger.error({ pending, sinceMs: now - since }, "results are not being delivered to job-service");
      else this.#options.logger.info("results are delivered again");
      this.#options.onChange?.(state.stalled);
    }
    if (state.recheckInMs !== undefined && !this.#closed) {
      this.#timer = setTimeout(() => this.check(), state.recheckInMs);
      this.#timer.unref();
    }
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
