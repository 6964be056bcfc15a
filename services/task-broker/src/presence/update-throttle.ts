// At most one presence update per session per throttle interval: a change inside the interval is
// sent once at its end (trailing), carrying the state of that moment.
export interface UpdateThrottle {
  /** A report of `id` was sent now. */
  sent(id: string, nowMs: number): void;
  /** Runs `send` now, or once at the end of the interval (later calls meanwhile fold into it). */
  update(id: string, nowMs: number, send: () => void): void;
  /** A trailing update of `id` is waiting. */
  pending(id: string): boolean;
  /** Drops `id`'s pending trailing update (and, with `forget`, when it last sent). */
  cancel(id: string, forget?: boolean): void;
  close(): void;
}

/** How long an update of a session that last sent at `lastSentMs` waits (0: send now). */
export function updateDelay(lastSentMs: number | undefined, nowMs: number, throttleMs: number): number {
  const since = nowMs - (lastSentMs ?? 0);
  return since >= throttleMs ? 0 : throttleMs - since;
}

export function createUpdateThrottle(throttleMs: number): UpdateThrottle {
  const lastSent = new Map<string, number>();
  const trailing = new Map<string, NodeJS.Timeout>();
  return {
    sent(id, nowMs) {
      lastSent.set(id, nowMs);
    },
    update(id, nowMs, send) {
      if (trailing.has(id)) return;
      const wait = updateDelay(lastSent.get(id), nowMs, throttleMs);
      if (wait === 0) return send();
      const t = setTimeout(() => {
        trailing.delete(id);
        send();
      }, wait);
      t.unref();
      trailing.set(id, t);
    },
    pending(id) {
      return trailing.has(id);
    },
    cancel(id, forget = false) {
      const t = trailing.get(id);
      if (t) clearTimeout(t);
      trailing.delete(id);
      if (forget) lastSent.delete(id);
    },
    close() {
      for (const t of trailing.values()) clearTimeout(t);
      trailing.clear();
    },
  };
}
