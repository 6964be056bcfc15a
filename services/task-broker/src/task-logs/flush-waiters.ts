// Who waits for lines to leave the forwarder: each waiter waits until no line up to its seq is
// buffered or in flight, or its time is up. Owns the set of waiters.

export interface FlushWaiters {
  /** True when lines up to `target` (a seq) are buffered or in flight. */
  waitsFor(target: number | undefined): boolean;
  /** Resolves once no line up to `target` waits, at the latest after `maxWaitMs`. */
  wait(target: number, maxWaitMs: number): Promise<void>;
  /** Resolves the waiters whose lines left (the lowest pending seq moved). */
  settle(): void;
  /** Resolves every waiter. */
  releaseAll(): void;
}

/** `lowestPending`: the lowest seq buffered or in flight, if any. */
export function createFlushWaiters(lowestPending: () => number | undefined): FlushWaiters {
  const waiters = new Set<{ target: number; done: () => void }>();
  return {
    waitsFor(target) {
      const low = lowestPending();
      return target !== undefined && low !== undefined && low <= target;
    },
    wait(target, maxWaitMs) {
      return new Promise<void>((resolve) => {
        const w = {
          target,
          done: () => {
            clearTimeout(t);
            waiters.delete(w);
            resolve();
          },
        };
        const t = setTimeout(w.done, maxWaitMs);
        t.unref?.();
        waiters.add(w);
      });
    },
    settle() {
      const low = lowestPending();
      for (const w of [...waiters]) if (low === undefined || low > w.target) w.done();
    },
    releaseAll() {
      for (const w of [...waiters]) w.done();
    },
  };
}
