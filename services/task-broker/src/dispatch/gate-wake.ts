// When a dispatch group claims gated attempts: after something may have freed one (marked dirty),
// at a rate limit's retry time, or every poll interval (a wake-up can be lost). Owns the dirty
// flag, the time of the last claim and the retry timer.

export interface GateWake {
  /** A gated attempt may start: claim on the next turn. */
  markDirty(): void;
  /** Whether to claim now; clears the flag and notes the claim when so. */
  takeDirty(pollMs: number): boolean;
  /** Claim again in `ms` (the earliest of the pending retries wins); `poke` wakes the loop then. */
  retryIn(ms: number): void;
}

/** Whether a claim is due: marked dirty, or no claim for `pollMs`. */
export function gateClaimDue(dirty: boolean, nowMs: number, lastClaimMs: number, pollMs: number): boolean {
  return dirty || nowMs - lastClaimMs >= pollMs;
}

export function createGateWake(poke: () => void): GateWake {
  let dirty = true;
  let lastClaimMs = 0;
  let retry: { at: number; timer: NodeJS.Timeout } | undefined;
  return {
    markDirty() {
      dirty = true;
    },
    takeDirty(pollMs) {
      const now = Date.now();
      const due = gateClaimDue(dirty, now, lastClaimMs, pollMs);
      if (due) {
        dirty = false;
        lastClaimMs = now;
      }
      return due;
    },
    retryIn(ms) {
      const at = Date.now() + ms;
      if (retry && retry.at <= at) return;
      if (retry) clearTimeout(retry.timer);
      retry = { at, timer: setTimeout(retryNow, ms) };
      retry.timer.unref();
    },
  };

  function retryNow(): void {
    retry = undefined;
    dirty = true;
    poke();
  }
}
