// Dispatch: sessions with the same cluster and the same set of readable queues form one dispatch
// group with one loop. The loop sets aside the group's open credit as slots (sessions round-robin,
// a lease token each) and, in one Lua call on the shared command connection, reads at most that
// many new entries (non-blocking XREADGROUP) and leases them into the slots; then it hands them
// out. It sleeps until a wake-up: credit from a runner, or a Pub/Sub message that one
// of its queues got an entry (published by the enqueue script), with a slow poll as the safety
// net. Redis connections therefore do not grow with runners or with dispatch groups.
// Priority bands (tasks of priority 1 to 9, each level a stream of its own next to its queue's) are
// read highest first, one stream after the other for the slots left; every STARVATION_TURN-th read
// of a group goes lowest first, so priority 0 keeps a bounded share. A group without bands reads
// exactly as before.
import type { Logger } from "pino";
import { streamKey } from "../redis/keys.js";
import {
  maxStreamsPerReadClaim,
  slotToken,
  type ClaimRequest,
  type ClaimStatus,
  type QueueStore,
  type StreamEntry,
} from "../redis/queue-store.js";
import type { RunnerSession } from "../runner-session.js";
import type { SessionDispatch } from "../session-hub.js";
import type { Assignments } from "../session/assignments.js";
import { newLeaseToken } from "./lease-tokens.js";
import type { Wakeups } from "./wakeups.js";
import { bandPriority, baseQueue } from "../task-identifier.js";

/** Every this many reads of a group with priority bands, the lowest priority is read first. */
export const STARVATION_TURN = 4;

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

interface DispatchGroup {
  key: string;
  clusterId: string;
  queues: string[];
  streams: string[];
  /** Priority band queues (`<queue>!p<N>`) of the group's queues that exist, highest first. */
  bands: string[];
  /** Reads of the band streams so far (the starvation turn). */
  bandReads: number;
  sessions: RunnerSession[];
  rr: number;
  /** Entries read (a read returns up to COUNT per stream) that no session had credit for. */
  buffer: StreamEntry[];
  bufferedAtMs: number;
  /** Something may be readable: set by wake-ups, cleared before each read. */
  dirty: boolean;
  wake: (() => void) | undefined;
  lastRecoverMs: number;
  /** The consumer groups exist and the wake-up channel is subscribed. */
  ready: boolean;
  /** Batches being leased (claim and revocation check) while the loop reads on. */
  handling: Set<Promise<void>>;
  /** Streams that returned entries in the last read (all of them when it returned none). */
  hotStreams: number;
  /** Wait before reading again after a failed read-and-claim (0 after a success). */
  errorBackoffMs: number;
}

/** Redis answered that a stream's consumer group is gone (Redis lost its data): create it again. */
function isNoGroup(err: unknown): boolean {
  return String((err as Error).message).includes("NOGROUP");
}

function groupKey(session: RunnerSession): string {
  return `${session.cluster.id}\n${session.queues.join("\n")}`;
}

export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const { queues, logger } = options;
  const groups = new Map<string, DispatchGroup>();
  const bySession = new Map<string, DispatchGroup>();
  /** cluster id → queue name → groups reading it. */
  const readers = new Map<string, Map<string, Set<DispatchGroup>>>();
  const loops = new Set<Promise<void>>();
  let stopped = false;

  /** Lets the loop look at the group again without claiming there is something to read. */
  const poke = (g: DispatchGroup) => {
    const w = g.wake;
    g.wake = undefined;
    w?.();
  };

  const wakeGroup = (g: DispatchGroup) => {
    g.dirty = true;
    poke(g);
  };

  const sleep = (g: DispatchGroup, ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        g.wake = undefined;
        g.dirty = true;
        resolve();
      }, ms);
      timer.unref();
      g.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  const available = (g: DispatchGroup) => g.sessions.reduce((n, s) => n + s.available, 0);

  function pick(g: DispatchGroup): RunnerSession | undefined {
    const n = g.sessions.length;
    for (let i = 0; i < n; i++) {
      const s = g.sessions[(g.rr + i) % n]!;
      if (s.available > 0) {
        g.rr = (g.rr + i + 1) % n;
        return s;
      }
    }
    return undefined;
  }

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

  /** Adds a band queue the group did not read yet (kept highest priority first). */
  function addBand(g: DispatchGroup, band: string): boolean {
    if (g.bands.includes(band)) return false;
    g.bands.push(band);
    g.bands.sort((a, b) => bandPriority(b) - bandPriority(a) || (a < b ? -1 : 1));
    return true;
  }

  /** The streams of a read: bands highest first then the plain queues, reversed on the starvation turn. */
  function bandedStreams(g: DispatchGroup): string[] {
    const ordered = [...g.bands.map((b) => streamKey(g.clusterId, b)), ...g.streams];
    g.bandReads += 1;
    return g.bandReads % STARVATION_TURN === 0 ? ordered.reverse() : ordered;
  }

  /** Remembers how many streams the last read found entries in (all of them when none). */
  function noteHotStreams(g: DispatchGroup, read: readonly StreamEntry[]): void {
    const hot = new Set(read.map((e) => e.stream)).size;
    g.hotStreams = hot > 0 ? hot : g.streams.length;
  }

  /** Puts entries no session can take yet into the group's buffer. */
  function hold(g: DispatchGroup, entries: StreamEntry[]): void {
    if (entries.length === 0) return;
    if (g.buffer.length === 0) g.bufferedAtMs = Date.now();
    g.buffer.push(...entries);
  }

  /**
   * Leases `entries` to sessions with credit. Sessions are reserved before the first await, so a
   * read that runs meanwhile only asks for the credit still open; credit that ends up unused
   * (revoked or duplicate entries, a failed claim) wakes the group again.
   */
  async function handle(g: DispatchGroup, entries: StreamEntry[]): Promise<void> {
    const picked: StreamEntry[] = [];
    const targets: RunnerSession[] = [];
    const waiting: StreamEntry[] = [];
    for (const entry of entries) {
      const session = pick(g);
      if (!session) {
        waiting.push(entry);
        continue;
      }
      session.account.reserve();
      picked.push(entry);
      targets.push(session);
    }
    hold(g, waiting);
    if (picked.length === 0) return;
    const now = Date.now();
    const requests: ClaimRequest[] = picked.map((entry, i) => ({
      entry,
      token: newLeaseToken(),
      expiryMs: now + options.leaseDurationMs,
      sessionId: targets[i]!.id,
      brokerId: options.brokerId,
    }));
    let statuses: ClaimStatus[];
    try {
      statuses = await queues.claim(requests);
    } catch (err) {
      // Nothing or part of it applied: claiming again is safe (a live lease answers 'inflight',
      // and its token is lost with this attempt: it expires and is re-queued).
      for (const t of targets) t.account.unreserve();
      hold(g, picked);
      wakeGroup(g);
      throw err;
    }
    for (const t of targets) t.account.unreserve();
    await settle(g, requests, targets, statuses);
  }

  /**
   * Hands out what a claim leased (the sessions' reservations are already undone); leases of a
   * session that closed meanwhile go back to their streams.
   */
  async function settle(g: DispatchGroup, requests: ClaimRequest[], targets: RunnerSession[], statuses: ClaimStatus[]) {
    let unused = false;
    const orphaned: ClaimRequest[] = [];
    requests.forEach((r, i) => {
      if (statuses[i] !== "leased") unused = true;
      // The stream ended, or the runner reregistered away from this group, while this entry was
      // being claimed: it goes back to its stream for the group that reads it now.
      else if (targets[i]!.state === "closed" || bySession.get(targets[i]!.id) !== g) orphaned.push(r);
      else options.assignments.granted(targets[i]!, r.entry, r.token, r.expiryMs);
    });
    if (orphaned.length > 0) {
      await queues.release(orphaned).catch((err: unknown) => {
        logger.warn({ err, count: orphaned.length }, "could not give back leases of a closed session; they expire");
      });
      unused = true;
      // A session that moved to another group reads there with the credit this left open.
      for (const r of orphaned) {
        const moved = bySession.get(r.sessionId);
        if (moved && moved !== g) wakeGroup(moved);
      }
    }
    // Revoked, duplicate or in-flight entries left their session's credit open: read again.
    if (unused) wakeGroup(g);
  }

  /**
   * Sets the group's open credit aside as slots and reads and leases up to that many entries in one
   * call, without waiting: the loop goes on with credit that opens meanwhile.
   */
  function startReadClaim(g: DispatchGroup, open: number, count: number): void {
    const slots: RunnerSession[] = [];
    for (let i = 0; i < open; i++) {
      const session = pick(g);
      if (!session) break;
      session.account.reserve();
      slots.push(session);
    }
    const tokenBase = newLeaseToken();
    const expiryMs = Date.now() + options.leaseDurationMs;
    const banded = g.bands.length > 0;
    const streams = banded ? bandedStreams(g) : g.streams;
    const p: Promise<void> = (async () => {
      let read;
      try {
        read = await queues.readClaim(
          options.brokerId,
          g.clusterId,
          streams,
          count,
          { sessions: slots.map((s) => s.id), tokenBase },
          expiryMs,
          banded,
        );
      } finally {
        for (const s of slots) s.account.unreserve();
      }
      noteHotStreams(g, read.map((r) => r.entry));
      const requests: ClaimRequest[] = [];
      const targets: RunnerSession[] = [];
      const statuses: ClaimStatus[] = [];
      const unclaimed: StreamEntry[] = [];
      for (const r of read) {
        if (r.status === "unclaimed") {
          unclaimed.push(r.entry);
          continue;
        }
        const session = slots[r.slot]!;
        requests.push({ entry: r.entry, token: slotToken(tokenBase, r.slot), expiryMs, sessionId: session.id, brokerId: options.brokerId });
        targets.push(session);
        statuses.push(r.status);
      }
      hold(g, unclaimed);
      await settle(g, requests, targets, statuses);
      // There may be more: read again. An empty read leaves the loop asleep until a wake-up.
      if (read.length > 0) g.dirty = true;
    })()
      .then(() => {
        g.errorBackoffMs = 0;
      })
      .catch((err: unknown) => {
        if (isNoGroup(err)) g.ready = false;
        g.errorBackoffMs = Math.min(Math.max(50, g.errorBackoffMs * 2), 2_000);
        logger.warn({ err, cluster: g.clusterId, retryInMs: g.errorBackoffMs }, "reading and leasing failed");
        setTimeout(() => wakeGroup(g), g.errorBackoffMs).unref();
      })
      .finally(() => {
        g.handling.delete(p);
        poke(g);
      });
    g.handling.add(p);
  }

  /** At most this many batches of one group are being leased at once (reads overlap claims). */
  const maxHandling = 4;

  /** Leases `entries` without waiting; the loop goes on reading with the credit still open. */
  function startHandle(g: DispatchGroup, entries: StreamEntry[]): void {
    const p: Promise<void> = handle(g, entries)
      .catch((err: unknown) => {
        if (isNoGroup(err)) g.ready = false;
        logger.warn({ err, cluster: g.clusterId }, "leasing a batch failed; its entries wait in the buffer");
      })
      .finally(() => {
        g.handling.delete(p);
        wakeGroup(g);
      });
    g.handling.add(p);
  }

  async function recover(g: DispatchGroup, count: number): Promise<StreamEntry[]> {
    g.lastRecoverMs = Date.now();
    const out: StreamEntry[] = [];
    for (const stream of [...g.bands.map((b) => streamKey(g.clusterId, b)), ...g.streams]) {
      if (out.length >= count) break;
      out.push(...(await queues.autoclaim(options.brokerId, stream, options.recoverIdleMs, count - out.length)));
    }
    return out;
  }

  async function run(g: DispatchGroup): Promise<void> {
    let backoffMs = 50;
    while (!stopped && g.sessions.length > 0) {
      try {
        if (!g.ready) {
          await options.subscribe(g.clusterId);
          const readable = new Set(g.queues);
          for (const q of await queues.queueNames(g.clusterId)) {
            if (q !== baseQueue(q) && readable.has(baseQueue(q))) addBand(g, q);
          }
          await queues.ensureGroups(g.clusterId, [...g.queues, ...g.bands]);
          g.ready = true;
        }
        const open = available(g);
        if (open === 0) {
          // Entries held without credit for a poll interval go back to their streams, where
          // runners of other groups or replicas can take them.
          if (g.buffer.length > 0 && Date.now() - g.bufferedAtMs >= options.pollIntervalMs) {
            await queues.requeue(g.buffer.splice(0));
          }
          await sleep(g, options.pollIntervalMs);
          continue;
        }
        if (g.buffer.length > 0) {
          await handle(g, g.buffer.splice(0));
          if (g.buffer.length > 0) await sleep(g, options.pollIntervalMs);
          continue;
        }
        if (Date.now() - g.lastRecoverMs >= options.recoverIdleMs) {
          const orphans = await recover(g, open);
          if (orphans.length > 0) {
            await handle(g, orphans);
            continue;
          }
        }
        if (!g.dirty) {
          await sleep(g, options.pollIntervalMs);
          continue;
        }
        g.dirty = false;
        // COUNT applies per stream: split the credit over the streams that had entries last
        // time, so a group never holds much more than it can hand out (other groups and
        // replicas could run what sits in its buffer).
        const count = Math.max(1, Math.ceil(open / Math.max(1, g.hotStreams)));
        if (g.streams.length + g.bands.length <= maxStreamsPerReadClaim) {
          startReadClaim(g, open, count);
          if (g.handling.size >= maxHandling) await Promise.race(g.handling);
          continue;
        }
        const entries = await queues.read(options.brokerId, g.streams, count);
        noteHotStreams(g, entries);
        if (entries.length > 0) {
          // There may be more: read again right away, with the credit the batch did not take,
          // while the batch is being leased.
          g.dirty = true;
          startHandle(g, entries);
          if (g.handling.size >= maxHandling) await Promise.race(g.handling);
        }
        backoffMs = 50;
      } catch (err) {
        if (stopped) break;
        if (isNoGroup(err)) g.ready = false;
        logger.warn({ err, cluster: g.clusterId }, "dispatch loop error; retrying");
        await sleep(g, backoffMs);
        backoffMs = Math.min(backoffMs * 2, 2_000);
      }
    }
    await Promise.allSettled([...g.handling]);
    if (g.buffer.length > 0) {
      await queues.requeue(g.buffer.splice(0)).catch((err: unknown) => {
        logger.error({ err }, "could not re-queue unassigned entries; they are recovered after the idle time");
      });
    }
  }

  function join(session: RunnerSession): void {
    // A runner that registered nothing yet (a release runner before its Reregister) reads nothing.
    if (session.queues.length === 0) return;
    const key = groupKey(session);
    const existing = groups.get(key);
    if (existing) {
      existing.sessions.push(session);
      bySession.set(session.id, existing);
      wakeGroup(existing);
      return;
    }
    const g = newGroup(key, session);
    groups.set(key, g);
    register(g);
    g.sessions.push(session);
    bySession.set(session.id, g);
    const loop: Promise<void> = run(g).finally(() => loops.delete(loop));
    loops.add(loop);
  }

  function leave(session: RunnerSession): void {
    const g = bySession.get(session.id);
    if (!g) return;
    bySession.delete(session.id);
    g.sessions = g.sessions.filter((s) => s !== session);
    if (g.sessions.length === 0) {
      if (groups.get(g.key) === g) groups.delete(g.key);
      unregister(g);
      wakeGroup(g);
    }
  }

  function notify(clusterId: string, queue: string): void {
    const base = baseQueue(queue);
    const set = readers.get(clusterId)?.get(base);
    if (!set) return;
    for (const g of set) {
      // A band seen for the first time: its stream and consumer group were created by the enqueue.
      if (base !== queue) addBand(g, queue);
      wakeGroup(g);
    }
  }
  options.wakeups.listen(notify);

  return {
    join,
    leave,
    move(session) {
      // Entries its old group is leasing to it right now go back to their streams (settle).
      leave(session);
      join(session);
    },
    wake(session) {
      const g = bySession.get(session.id);
      if (g) wakeGroup(g);
    },
    get groupCount() {
      return groups.size;
    },
    async stop() {
      stopped = true;
      for (const g of groups.values()) wakeGroup(g);
      await Promise.allSettled([...loops]);
    },
  };
}

function newGroup(key: string, session: RunnerSession): DispatchGroup {
  return {
    key,
    clusterId: session.cluster.id,
    queues: session.queues,
    streams: session.queues.map((q) => streamKey(session.cluster.id, q)),
    bands: [],
    bandReads: 0,
    sessions: [],
    rr: 0,
    buffer: [],
    bufferedAtMs: 0,
    dirty: true,
    wake: undefined,
    lastRecoverMs: 0,
    ready: false,
    handling: new Set(),
    hotStreams: session.queues.length,
    errorBackoffMs: 0,
  };
}
