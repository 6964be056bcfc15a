// Which local session holds which lease. The one owner of every session's held leases and of the
// index from (cluster, attempt) to the session holding it: granting, resuming, releasing and
// reporting a lease go through here; the session and everyone else only read.
import type { RunnerSession } from "../runner-session.js";

export interface HeldLease {
  readonly taskId: string;
  readonly attempt: number;
  readonly token: string;
  readonly jobId: string;
  /** The queue (`<name>:<version>`, a band's suffix kept) it came from: its task's identifier. */
  readonly queue: string;
  /** When this replica handed it out (or the runner resumed it here), ms since the epoch. */
  readonly sinceMs: number;
  readonly expireMs: number;
  /** A result for it is on its way to job-service. */
  readonly reporting: boolean;
}

interface MutableLease {
  taskId: string;
  attempt: number;
  token: string;
  jobId: string;
  queue: string;
  sinceMs: number;
  expireMs: number;
  reporting: boolean;
}

const none: ReadonlyMap<string, MutableLease> = new Map();

/**
 * One session's leases by attempt member (`<task id>:<attempt>`); read-only outside this module.
 * The map is made with the first lease: an idle runner's session holds none.
 */
export class HeldLeases {
  #byMember: Map<string, MutableLease> | undefined;

  get size(): number {
    return this.#byMember?.size ?? 0;
  }

  get(member: string): HeldLease | undefined {
    return this.#byMember?.get(member);
  }

  has(member: string): boolean {
    return this.#byMember?.has(member) ?? false;
  }

  keys(): IterableIterator<string> {
    return (this.#byMember ?? none).keys();
  }

  values(): IterableIterator<HeldLease> {
    return (this.#byMember ?? none).values();
  }

  /** @internal LeaseHoldings only. */
  _map(): Map<string, MutableLease> {
    return (this.#byMember ??= new Map());
  }
}

export interface LeaseHoldings {
  /** Records a lease granted to (or resumed by) `session`; a previous local holder loses it. */
  hold(session: RunnerSession, member: string, lease: Omit<HeldLease, "reporting">): void;
  /** The session no longer holds it (done, lost, expired). */
  release(session: RunnerSession, member: string): void;
  /** The local session holding `member` of `clusterId`, with its lease. */
  ownerOf(clusterId: string, member: string): { session: RunnerSession; held: HeldLease } | undefined;
  /** A result is on its way: true when this call started the report (false: one already is). */
  beginReport(session: RunnerSession, member: string): boolean;
  /** The report did not become durable: a repeated result may try again. */
  abortReport(session: RunnerSession, member: string): void;
  /** A heartbeat extended these leases. */
  extended(session: RunnerSession, members: readonly string[], expireMs: number): void;
  /** The session's stream is gone: it stops being anyone's owner (its leases stay in Redis). */
  forget(session: RunnerSession): void;
}

export function createLeaseHoldings(): LeaseHoldings {
  /** `<cluster id>/<member>` → the local session holding the lease. */
  const owners = new Map<string, RunnerSession>();
  const ownerKey = (clusterId: string, member: string) => `${clusterId}/${member}`;
  const mine = (session: RunnerSession) => session.leases._map();

  return {
    hold(session, member, lease) {
      const key = ownerKey(session.cluster.id, member);
      const previous = owners.get(key);
      if (previous && previous !== session) mine(previous).delete(member);
      mine(session).set(member, {
        taskId: lease.taskId,
        attempt: lease.attempt,
        token: lease.token,
        jobId: lease.jobId,
        queue: lease.queue,
        sinceMs: lease.sinceMs,
        expireMs: lease.expireMs,
        reporting: false,
      });
      owners.set(key, session);
    },
    release(session, member) {
      mine(session).delete(member);
      const key = ownerKey(session.cluster.id, member);
      if (owners.get(key) === session) owners.delete(key);
    },
    ownerOf(clusterId, member) {
      const session = owners.get(ownerKey(clusterId, member));
      const held = session?.leases.get(member);
      return session && held ? { session, held } : undefined;
    },
    beginReport(session, member) {
      const held = mine(session).get(member);
      if (!held || held.reporting) return false;
      held.reporting = true;
      return true;
    },
    abortReport(session, member) {
      const held = mine(session).get(member);
      if (held) held.reporting = false;
    },
    extended(session, members, expireMs) {
      for (const m of members) {
        const held = mine(session).get(m);
        if (held) held.expireMs = expireMs;
      }
    },
    forget(session) {
      for (const member of session.leases.keys()) {
        const key = ownerKey(session.cluster.id, member);
        if (owners.get(key) === session) owners.delete(key);
      }
    },
  };
}
