// Turning a dispatch group's entries into leases of its sessions: read-and-claim in one Lua call
// (credit set aside as slots first), or claim entries read earlier; then lease-grants.ts hands out
// what was leased. Batches run while the group's loop reads on; this module owns them (and the
// backoff after a failed one).
import { slotToken, type ClaimRequest, type ClaimStatus, type StreamEntry } from "../redis/queue-store.js";
import type { RunnerSession } from "../runner-session.js";
import type { DispatchGroup } from "./dispatch-group.js";
import { unreserve } from "./group-members.js";
import { grantLeases, type GrantContext } from "./lease-grants.js";
import { newLeaseToken } from "./lease-tokens.js";

export interface GroupLeasing {
  /** Batches being leased right now. */
  readonly inFlight: number;
  /** Resolves when one batch in flight settles. */
  oneSettled(): Promise<void>;
  /** Resolves when every batch in flight has settled. */
  allSettled(): Promise<unknown>;
  /**
   * Leases `entries` (read earlier) to sessions with credit; the rest wait in the buffer. Throws
   * when the claim failed (its entries are back in the buffer, the group woken).
   */
  lease(entries: StreamEntry[]): Promise<void>;
  /** lease() without waiting; a failure is logged, its entries wait in the buffer. */
  startLease(entries: StreamEntry[]): void;
  /**
   * Sets `open` credit aside as slots and reads and leases up to `count` entries per stream in one
   * call, without waiting: the loop goes on with credit that opens meanwhile.
   */
  startReadClaim(open: number, count: number): void;
  /**
   * Sets `open` credit aside as slots and leases gated attempts (concurrency keys, rate limits)
   * into them in one call, without waiting.
   */
  startGateClaim(open: number): void;
}

/** What every group's leasing shares. */
export interface LeasingContext extends GrantContext {
  brokerId: string;
  leaseDurationMs: number;
}

/**
 * Claims entries read earlier for sessions with credit. Sessions are reserved before the first
 * await, so a read that runs meanwhile only asks for the credit still open; credit that ends up
 * unused (revoked or duplicate entries, a failed claim) wakes the group again.
 */
async function lease(g: DispatchGroup, ctx: LeasingContext, entries: StreamEntry[]): Promise<void> {
  const picked: StreamEntry[] = [];
  const targets: RunnerSession[] = [];
  const waiting: StreamEntry[] = [];
  for (const entry of entries) {
    const session = g.members.reserveNext();
    if (!session) {
      waiting.push(entry);
      continue;
    }
    picked.push(entry);
    targets.push(session);
  }
  g.buffer.hold(waiting);
  if (picked.length === 0) return;
  const now = Date.now();
  const requests: ClaimRequest[] = picked.map((entry, i) => ({
    entry,
    token: newLeaseToken(),
    expiryMs: now + ctx.leaseDurationMs,
    sessionId: targets[i]!.id,
    brokerId: ctx.brokerId,
  }));
  let statuses: ClaimStatus[];
  try {
    statuses = await ctx.queues.claim(requests);
  } catch (err) {
    // Nothing or part of it applied: claiming again is safe (a live lease answers 'inflight',
    // and its token is lost with this attempt: it expires and is re-queued).
    unreserve(targets);
    g.buffer.hold(picked);
    g.signal.wake();
    throw err;
  }
  unreserve(targets);
  await grantLeases(g, ctx, requests, targets, statuses);
}

/** Reads and leases into `slots` (reserved by the caller) in one call, then hands out the leases. */
async function readClaim(
  g: DispatchGroup,
  ctx: LeasingContext,
  slots: RunnerSession[],
  count: number,
  tokenBase: string,
  expiryMs: number,
): Promise<void> {
  let read;
  const { streams, banded } = g.readStreams();
  try {
    read = await ctx.queues.readClaim(
      ctx.brokerId,
      g.clusterId,
      streams,
      count,
      { sessions: slots.map((s) => s.id), tokenBase },
      expiryMs,
      banded,
    );
  } finally {
    unreserve(slots);
  }
  g.noteRead(read.map((r) => r.entry));
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
    requests.push({ entry: r.entry, token: slotToken(tokenBase, r.slot), expiryMs, sessionId: session.id, brokerId: ctx.brokerId });
    targets.push(session);
    statuses.push(r.status);
  }
  g.buffer.hold(unclaimed);
  await grantLeases(g, ctx, requests, targets, statuses);
  // There may be more: read again. An empty read leaves the loop asleep until a wake-up.
  if (read.length > 0) g.signal.markDirty();
}

/** Leases gated attempts into `slots` (reserved by the caller) in one call, then hands them out. */
async function gateClaim(g: DispatchGroup, ctx: LeasingContext, slots: RunnerSession[], tokenBase: string, now: number): Promise<void> {
  const expiryMs = now + ctx.leaseDurationMs;
  let claimed;
  try {
    // A concurrency slot whose lease has not been extended for a lease duration past its expiry
    // was lost with its record: it no longer counts.
    claimed = await ctx.queues.claimGated(
      ctx.brokerId,
      g.clusterId,
      g.gateOrder(),
      { sessions: slots.map((s) => s.id), tokenBase },
      expiryMs,
      now - ctx.leaseDurationMs,
    );
  } finally {
    unreserve(slots);
  }
  // Every slot taken: more may be startable.
  if (claimed.leased.length === slots.length) g.markGateDirty();
  if (claimed.retryInMs !== undefined) g.gateRetryIn(claimed.retryInMs);
  const requests: ClaimRequest[] = [];
  const targets: RunnerSession[] = [];
  for (const { entry, slot } of claimed.leased) {
    const session = slots[slot]!;
    requests.push({ entry, token: slotToken(tokenBase, slot), expiryMs, sessionId: session.id, brokerId: ctx.brokerId });
    targets.push(session);
  }
  await grantLeases(g, ctx, requests, targets, requests.map(() => "leased" as const));
}

export function createGroupLeasing(g: DispatchGroup, ctx: LeasingContext): GroupLeasing {
  const { logger } = ctx;
  /** Batches being leased (claim and revocation check) while the loop reads on. */
  const handling = new Set<Promise<void>>();
  /** Wait before reading again after a failed read-and-claim (0 after a success). */
  let errorBackoffMs = 0;

  return {
    get inFlight() {
      return handling.size;
    },
    oneSettled: () => Promise.race(handling),
    allSettled: () => Promise.allSettled([...handling]),
    lease: (entries) => lease(g, ctx, entries),
    startLease(entries) {
      const p: Promise<void> = lease(g, ctx, entries)
        .catch((err: unknown) => {
          g.failed(err);
          logger.warn({ err, cluster: g.clusterId }, "leasing a batch failed; its entries wait in the buffer");
        })
        .finally(() => {
          handling.delete(p);
          g.signal.wake();
        });
      handling.add(p);
    },
    startGateClaim(open) {
      const slots = g.members.reserveSlots(open);
      if (slots.length === 0) return;
      const p: Promise<void> = gateClaim(g, ctx, slots, newLeaseToken(), Date.now())
        .catch((err: unknown) => {
          g.markGateDirty();
          errorBackoffMs = Math.min(Math.max(50, errorBackoffMs * 2), 2_000);
          logger.warn({ err, cluster: g.clusterId, retryInMs: errorBackoffMs }, "leasing gated tasks failed");
          setTimeout(() => g.signal.poke(), errorBackoffMs).unref();
        })
        .finally(() => {
          handling.delete(p);
          g.signal.poke();
        });
      handling.add(p);
    },
    startReadClaim(open, count) {
      const slots = g.members.reserveSlots(open);
      const tokenBase = newLeaseToken();
      const expiryMs = Date.now() + ctx.leaseDurationMs;
      const p: Promise<void> = readClaim(g, ctx, slots, count, tokenBase, expiryMs)
        .then(() => {
          errorBackoffMs = 0;
        })
        .catch((err: unknown) => {
          g.failed(err);
          errorBackoffMs = Math.min(Math.max(50, errorBackoffMs * 2), 2_000);
          logger.warn({ err, cluster: g.clusterId, retryInMs: errorBackoffMs }, "reading and leasing failed");
          setTimeout(() => g.signal.wake(), errorBackoffMs).unref();
        })
        .finally(() => {
          handling.delete(p);
          g.signal.poke();
        });
      handling.add(p);
    },
  };
}
