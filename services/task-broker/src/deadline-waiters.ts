// Callers waiting for something to be over (no session left, no result pending) or for their
// deadline, whichever comes first; a drain step waits this way.
export class DeadlineWaiters {
  readonly #waiters = new Set<() => void>();

  /** Resolves at once when `done` says so, else on `notify()` or at `deadline` (ms since the epoch). */
  wait(done: boolean, deadline: number): Promise<void> {
    if (done) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.#waiters.delete(finish);
        resolve();
      };
      const timer = setTimeout(finish, Math.max(0, deadline - Date.now()));
      this.#waiters.add(finish);
    });
  }

  /** It is over: every waiter resolves. */
  notify(): void {
    for (const w of [...this.#waiters]) w();
  }
}
