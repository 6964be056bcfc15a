// The dispatch groups of this replica, keyed by cluster and queue set, and who belongs where: the
// group of each session, and the groups reading each queue of a cluster (for wake-ups). The last
// group of a cluster to go unsubscribes from the cluster's wake channel.
import type { RunnerSession } from "../runner-session.js";
import { createDispatchGroup, groupKey, type DispatchGroup } from "./dispatch-group.js";

/** Which group a session reads in now (a claim checks it before handing out a lease). */
export interface GroupMembership {
  groupOf(sessionId: string): DispatchGroup | undefined;
}

export interface DispatchGroups extends GroupMembership {
  readonly size: number;
  /** Adds `session` to the group of its queues, creating it (then `created`: start its loop). */
  join(session: RunnerSession): { group: DispatchGroup; created: boolean };
  /** Takes `session` out of its group; an emptied group is forgotten. Returns the group it left. */
  leave(session: RunnerSession): DispatchGroup | undefined;
  /** The groups that read `queue` of `clusterId`. */
  readersOf(clusterId: string, queue: string): ReadonlySet<DispatchGroup> | undefined;
  values(): IterableIterator<DispatchGroup>;
}

export function createDispatchGroups(options: {
  /** No dispatch group of this cluster is left. */
  unsubscribe(clusterId: string): void;
}): DispatchGroups {
  const groups = new Map<string, DispatchGroup>();
  const bySession = new Map<string, DispatchGroup>();
  /** cluster id → queue name → groups reading it. */
  const readers = new Map<string, Map<string, Set<DispatchGroup>>>();

  function register(g: DispatchGroup) {
    let byQueue = readers.get(g.clusterId);
    if (!byQueue) readers.set(g.clusterId, (byQueue = new Map()));
    for (const q of g.queues) {
      let set = byQueue.get(q);
      if (!set) byQueue.set(q, (set = new Set()));
      set.add(g);
    }
  }

  function unregister(g: DispatchGroup) {
    const byQueue = readers.get(g.clusterId);
    if (!byQueue) return;
    for (const q of g.queues) {
      const set = byQueue.get(q);
      set?.delete(g);
      if (set && set.size === 0) byQueue.delete(q);
    }
    if (byQueue.size === 0) {
      readers.delete(g.clusterId);
      options.unsubscribe(g.clusterId);
    }
  }

  return {
    get size() {
      return groups.size;
    },
    groupOf: (sessionId) => bySession.get(sessionId),
    join(session) {
      const key = groupKey(session);
      let group = groups.get(key);
      const created = !group;
      if (!group) {
        group = createDispatchGroup(session);
        groups.set(key, group);
        register(group);
      }
      group.members.add(session);
      bySession.set(session.id, group);
      return { group, created };
    },
    leave(session) {
      const g = bySession.get(session.id);
      if (!g) return undefined;
      bySession.delete(session.id);
      g.members.remove(session);
      if (g.members.size === 0) {
        if (groups.get(g.key) === g) groups.delete(g.key);
        unregister(g);
      }
      return g;
    },
    readersOf: (clusterId, queue) => readers.get(clusterId)?.get(queue),
    values: () => groups.values(),
  };
}
