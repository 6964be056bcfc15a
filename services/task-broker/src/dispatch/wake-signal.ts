// When a dispatch group's loop looks again: it sleeps until a wake-up (credit from a runner, a
// queue of the group got entries, a batch settled) or until its poll interval passes. `dirty`
// says something may be readable; a poke only lets the loop look without claiming that.
export interface WakeSignal {
  /** Something may be readable: read on the next turn, and end a sleep now. */
  wake(): void;
  /** Ends a sleep without claiming there is something to read. */
  poke(): void;
  /** Read on the next turn (without ending a sleep: the loop is awake). */
  markDirty(): void;
  /** Whether something may be readable; clears it (before each read). */
  takeDirty(): boolean;
  /** Resolves after `ms` (then marked dirty: the poll) or at the next wake or poke. */
  sleep(ms: number): Promise<void>;
}

export function createWakeSignal(): WakeSignal {
  let dirty = true;
  let wakeSleeper: (() => void) | undefined;

  const poke = () => {
    const w = wakeSleeper;
    wakeSleeper = undefined;
    w?.();
  };

  return {
    wake() {
      dirty = true;
      poke();
    },
    poke,
    markDirty() {
      dirty = true;
    },
    takeDirty() {
      const was = dirty;
      dirty = false;
      return was;
    },
    sleep: (ms) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          wakeSleeper = undefined;
          dirty = true;
          resolve();
        }, ms);
        timer.unref();
        wakeSleeper = () => {
          clearTimeout(timer);
          resolve();
        };
      }),
  };
}
