// Each session's results still on their way to job-service, and who waits for none to be left (an
// ended input stream closes once its results are answered). The one owner of those counts.
import type { RunnerSession } from "../runner-session.js";

export class PendingResults {
  readonly #pending = new Map<RunnerSession, number>();
  readonly #idleWaiters = new Map<RunnerSession, () => void>();

  /** A result of `session` is on its way. */
  begin(session: RunnerSession): void {
    this.#pending.set(session, (this.#pending.get(session) ?? 0) + 1);
  }

  /** A result of `session` was answered (or given up). */
  settled(session: RunnerSession): void {
    const left = (this.#pending.get(session) ?? 1) - 1;
    if (left > 0) return void this.#pending.set(session, left);
    this.#pending.delete(session);
    const waiter = this.#idleWaiters.get(session);
    this.#idleWaiters.delete(session);
    waiter?.();
  }

  /** Calls `fn` once no result of `session` is on its way (at once when none is). */
  whenIdle(session: RunnerSession, fn: () => void): void {
    if ((this.#pending.get(session) ?? 0) === 0) fn();
    else this.#idleWaiters.set(session, fn);
  }
}
