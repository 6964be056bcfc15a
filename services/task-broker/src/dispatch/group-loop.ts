// The loop of one dispatch group: while the group has members, make sure its consumer groups exist,
// then per turn either hand out buffered entries, take over entries a dead broker left pending,
// or read (read-and-claim, or read then claim for many streams) with the group's open credit; and
// sleep until a wake-up when there is nothing to do. On exit, entries still buffered are re-queued.
import type { Logger } from "pino";
import { baseQueue, isGateQueue } from "../task-identifier.js";
import { maxStreamsPerReadClaim, type QueueStore, type StreamEntry } from "../redis/queue-store.js";
import type { DispatchGroup } from "./dispatch-group.js";
import type { GroupLeasing } from "./group-leasing.js";

/** What every group's loop shares. */
export interface LoopContext {
  queues: QueueStore;
  brokerId: string;
  /** Read again after this long without a wake-up (a Pub/Sub message can be lost on reconnect). */
  pollIntervalMs: number;
  /** Entries pending this long without a lease (their broker died mid-read) are taken over. */
  recoverIdleMs: number;
  /** Start receiving wake-ups of a cluster (resolves once subscribed). */
  subscribe(clusterId: string): Promise<void>;
  logger: Logger;
}

/** At most this many batches of one group are being leased at once (reads overlap claims). */
const maxHandling = 4;

/** Runs the loop of `g` until it has no members or `stop` is aborted. */
export async function runGroupLoop(g: DispatchGroup, leasing: GroupLeasing, ctx: LoopContext, stop: AbortSignal): Promise<void> {
  const turn = createTurn(g, leasing, ctx);
  let backoffMs = 50;
  while (!stop.aborted && g.members.size > 0) {
    try {
      // Only a turn that ended in a plain read (the many-streams path) resets the backoff; the
      // others keep it, as the loop always did.
      if (await turn()) backoffMs = 50;
    } catch (err) {
      if (stop.aborted) break;
      g.failed(err);
      ctx.logger.warn({ err, cluster: g.clusterId }, "dispatch loop error; retrying");
      await g.signal.sleep(backoffMs);
      backoffMs = Math.min(backoffMs * 2, 2_000);
    }
  }
  await leasing.allSettled();
  if (g.buffer.size > 0) {
    await ctx.queues.requeue(g.buffer.takeAll()).catch((err: unknown) => {
      ctx.logger.error({ err }, "could not re-queue unassigned entries; they are recovered after the idle time");
    });
  }
}

/**
 * One turn of the loop of `g`, true when it ended in a plain read (its state between turns: when it
 * last took over orphans).
 */
function createTurn(g: DispatchGroup, leasing: GroupLeasing, ctx: LoopContext): () => Promise<boolean> {
  const { queues, pollIntervalMs, recoverIdleMs } = ctx;
  let lastRecoverMs = 0;

  async function recover(count: number): Promise<StreamEntry[]> {
    lastRecoverMs = Date.now();
    const out: StreamEntry[] = [];
    for (const stream of g.allStreams()) {
      if (out.length >= count) break;
      out.push(...(await queues.autoclaim(ctx.brokerId, stream, recoverIdleMs, count - out.length)));
    }
    return out;
  }

  return async function turn(): Promise<boolean> {
    if (!g.ready) {
      await ctx.subscribe(g.clusterId);
      // Priority bands of the group's queues that exist already (later ones come with their wake-up).
      const readable = new Set(g.queues);
      for (const q of await queues.queueNames(g.clusterId)) {
        if (!readable.has(baseQueue(q))) continue;
        if (isGateQueue(q)) g.addGate(q);
        else if (q !== baseQueue(q)) g.addBand(q);
      }
      await queues.ensureGroups(g.clusterId, [...g.queues, ...g.bands]);
      g.markReady();
    }
    const open = g.members.available();
    if (open === 0) {
      // Entries held without credit for a poll interval go back to their streams, where
      // runners of other groups or replicas can take them.
      if (g.buffer.heldFor(pollIntervalMs)) await queues.requeue(g.buffer.takeAll());
      await g.signal.sleep(pollIntervalMs);
      return false;
    }
    if (g.buffer.size > 0) {
      await leasing.lease(g.buffer.takeAll());
      if (g.buffer.size > 0) await g.signal.sleep(pollIntervalMs);
      return false;
    }
    if (Date.now() - lastRecoverMs >= recoverIdleMs) {
      const orphans = await recover(open);
      if (orphans.length > 0) {
        await leasing.lease(orphans);
        return false;
      }
    }
    // Gated attempts (a concurrency key or a rate limit) are claimed on their own turn, only when
    // one may start; a group without any never gets here.
    if (g.gates.length > 0 && g.takeGateDirty(pollIntervalMs)) {
      leasing.startGateClaim(open);
      if (leasing.inFlight >= maxHandling) await leasing.oneSettled();
      return false;
    }
    if (!g.signal.takeDirty()) {
      await g.signal.sleep(pollIntervalMs);
      return false;
    }
    const count = g.readCount(open);
    if (g.streams.length + g.bands.length <= maxStreamsPerReadClaim) {
      leasing.startReadClaim(open, count);
      if (leasing.inFlight >= maxHandling) await leasing.oneSettled();
      return false;
    }
    const entries = await queues.read(ctx.brokerId, g.readStreams().streams, count);
    g.noteRead(entries);
    if (entries.length > 0) {
      // There may be more: read again right away, with the credit the batch did not take,
      // while the batch is being leased.
      g.signal.markDirty();
      leasing.startLease(entries);
      if (leasing.inFlight >= maxHandling) await leasing.oneSettled();
    }
    return true;
  };
}
