// Whether a session may write lines for an attempt: the lease it holds, or the attempt's token in
// Redis (a lease lost, expired or with its stream, still names the attempt its lines belong to).
// Attempts a session proved are remembered, so Redis is asked once per attempt.
import { attemptMember } from "../redis/keys.js";
import type { LeaseStore } from "../redis/lease-store.js";
import type { RunnerSession } from "../runner-session.js";

/** Most attempts remembered per session. */
const MAX_PROVEN = 10_000;

export type LogLeaseCheck = (session: RunnerSession, taskId: string, attempt: number, token: string) => Promise<boolean>;

export function createLogLeaseCheck(leases: Pick<LeaseStore, "attempt">): LogLeaseCheck {
  const proven = new WeakMap<RunnerSession, Set<string>>();
  return async (session, taskId, attempt, token) => {
    const key = attemptMember(taskId, attempt);
    const held = session.leases.get(key);
    if (held) return held.token === token;
    let known = proven.get(session);
    if (known?.has(`${key}:${token}`)) return true;
    const record = token ? await leases.attempt(session.cluster.id, taskId, attempt) : undefined;
    if (!record || record.token !== token) return false;
    if (!known) proven.set(session, (known = new Set()));
    if (known.size < MAX_PROVEN) known.add(`${key}:${token}`);
    return true;
  };
}
