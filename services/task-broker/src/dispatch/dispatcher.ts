// Dispatch: sessions with the same cluster and the same set of readable queues form one dispatch
// group with one loop. The loop sets aside the group's open credit as slots (sessions round-robin,
// a lease token each) and, in one Lua call on the shared command connection, reads at most that
// many new entries (non-blocking XREADGROUP) and leases them into the slots; then it hands them
// out. It sleeps until a wake-up: credit from a runner, or a Pub/Sub message that one
// of its queues got an entry (published by the enqueue script), with a slow poll as the safety
// net. Redis connections therefore do not grow with runners or with dispatch groups.
//
// This file wires the parts: dispatch-groups.ts (which group each session reads in) → one
// group-loop.ts per group, with its group-leasing.ts (claims and grants) → Assignments.
import type { Logger } from "pino";
import type { QueueStore } from "../redis/queue-store.js";
import type { RunnerSession } from "../runner-session.js";
import type { SessionDispatch } from "../session-hub.js";
import type { Assignments } from "../session/assignments.js";
import { createDispatchGroups } from "./dispatch-groups.js";
import { createGroupLeasing, type LeasingContext } from "./group-leasing.js";
import { runGroupLoop, type LoopContext } from "./group-loop.js";
import type { Wakeups } from "./wakeups.js";
import { baseQueue, isGateQueue } from "../task-identifier.js";

export { STARVATION_TURN } from "./band-order.js";

export interface DispatcherOptions {
  queues: QueueStore;
  brokerId: string;
  leaseDurationMs: number;
  /** Read again after this long without a wake-up (a Pub/Sub message can be lost on reconnect). */
  pollIntervalMs: number;
  /** Entries pending this long without a lease (their broker died mid-read) are taken over. */
  recoverIdleMs: number;
  logger: Logger;
  /** Start receiving wake-ups of a cluster (resolves once subscribed). */
  subscribe(clusterId: string): Promise<void>;
  /** No dispatch group of this cluster is left. */
  unsubscribe(clusterId: string): void;
  /** Where granted leases go (recorded, and sent to the runner as Assign). */
  assignments: Assignments;
  /** "A queue got entries" (this process's enqueues and the Pub/Sub wake-ups): wakes its readers. */
  wakeups: Wakeups;
}

export interface Dispatcher extends SessionDispatch {
  /** Number of dispatch groups (distinct cluster + queue sets) with a loop. */
  readonly groupCount: number;
  /** Stops every loop; entries read but not handed out go back to their streams. */
  stop(): Promise<void>;
}

export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const groups = createDispatchGroups({ unsubscribe: options.unsubscribe });
  const leasing: LeasingContext = { ...options, membership: groups };
  const looping: LoopContext = options;
  const loops = new Set<Promise<void>>();
  const stopping = new AbortController();

  function join(session: RunnerSession): void {
    // A runner that registered nothing yet (a release runner before its Reregister) reads nothing.
    if (session.queues.length === 0) return;
    const { group, created } = groups.join(session);
    if (!created) {
      group.signal.wake();
      return;
    }
    const groupLeasing = createGroupLeasing(group, leasing);
    const loop: Promise<void> = runGroupLoop(group, groupLeasing, looping, stopping.signal).finally(() => loops.delete(loop));
    loops.add(loop);
  }

  function leave(session: RunnerSession): void {
    const g = groups.leave(session);
    // An emptied group's loop wakes to end.
    if (g && g.members.size === 0) g.signal.wake();
  }

  options.wakeups.listen((clusterId, queue) => {
    // A priority band (`<queue>!p<N>`) wakes the readers of its queue.
    const base = baseQueue(queue);
    const set = groups.readersOf(clusterId, base);
    if (!set) return;
    for (const g of set) {
      if (isGateQueue(queue)) {
        // A gated attempt may start: claim from its band (new or not); the streams need no read.
        g.addGate(queue);
        g.markGateDirty();
        g.signal.poke();
        continue;
      }
      // A band seen for the first time: its stream and consumer group were created by the enqueue.
      if (base !== queue) g.addBand(queue);
      g.signal.wake();
    }
  });

  return {
    join,
    leave,
    move(session) {
      // Entries its old group is leasing to it right now go back to their streams (settle).
      leave(session);
      join(session);
    },
    wake(session) {
      groups.groupOf(session.id)?.signal.wake();
    },
    get groupCount() {
      return groups.size;
    },
    async stop() {
      stopping.abort();
      for (const g of groups.values()) g.signal.wake();
      await Promise.allSettled([...loops]);
    },
  };
}
