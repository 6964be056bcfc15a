// The runner sessions of one dispatch group and the credit the dispatcher promises out of theirs:
// sessions take turns (round-robin), and a session is reserved one credit for each entry being
// claimed for it, so a read that runs meanwhile only asks for the credit still open.
import type { RunnerSession } from "../runner-session.js";

export interface GroupMembers {
  readonly size: number;
  add(session: RunnerSession): void;
  remove(session: RunnerSession): void;
  /** Open credit of every member that may be promised now. */
  available(): number;
  /** The next member with credit (round-robin), one credit reserved on it; undefined when none has any. */
  reserveNext(): RunnerSession | undefined;
  /** Up to `count` credits, one per slot, members taking turns; fewer when credit runs out. */
  reserveSlots(count: number): RunnerSession[];
}

/** Gives back one reserved credit per entry of `sessions` (a claim answered, or failed). */
export function unreserve(sessions: readonly RunnerSession[]): void {
  for (const s of sessions) s.account.unreserve();
}

export function createGroupMembers(): GroupMembers {
  const sessions: RunnerSession[] = [];
  let rr = 0;

  function pick(): RunnerSession | undefined {
    const n = sessions.length;
    for (let i = 0; i < n; i++) {
      const s = sessions[(rr + i) % n]!;
      if (s.available > 0) {
        rr = (rr + i + 1) % n;
        return s;
      }
    }
    return undefined;
  }

  return {
    get size() {
      return sessions.length;
    },
    add(session) {
      sessions.push(session);
    },
    remove(session) {
      // In place, keeping the turn order: a broker losing thousands of runners at once (a network
      // split) removes each without copying the others.
      const i = sessions.indexOf(session);
      if (i < 0) return;
      sessions.splice(i, 1);
      if (rr > i) rr--;
      if (rr >= sessions.length) rr = 0;
    },
    available() {
      return sessions.reduce((n, s) => n + s.available, 0);
    },
    reserveNext() {
      const session = pick();
      session?.account.reserve();
      return session;
    },
    reserveSlots(count) {
      const slots: RunnerSession[] = [];
      for (let i = 0; i < count; i++) {
        const session = pick();
        if (!session) break;
        session.account.reserve();
        slots.push(session);
      }
      return slots;
    },
  };
}
