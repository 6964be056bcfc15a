// Streams of ready tasks: enqueue (deduplicated per attempt), reading for a dispatch group,
// claiming entries as leases, re-queueing unassigned entries, and queue statistics. The store is a
// facade: writes live in stream-writes.ts, reads and claims in stream-reads.ts, stats in
// queue-stats.ts, and each Lua call in script-calls.ts.
import type { TaskEnvelope } from "@corral/proto";
import type { RedisClient } from "./connection.js";
import { queuesKey } from "./keys.js";
import { readQueueStats, type QueueStat } from "./queue-stats.js";
import type { ClaimStatus } from "./script-calls.js";
import { defineScripts } from "./scripts.js";
import type { StreamEntry } from "./stream-entries.js";
import { autoclaimEntries, claimEntries, ensureGroups, readClaim, readEntries, type StreamReadContext } from "./stream-reads.js";
import { dropEntries, enqueueTasks, keepEnvelopeBytes, markRevoked, requeueEntries, type StreamWriteContext } from "./stream-writes.js";
import { claimGatedAttempts, releaseGated, type GateClaimed, type GateContext } from "./gate-claims.js";

export type { ClaimStatus } from "./script-calls.js";
export type { QueueStat } from "./queue-stats.js";
export type { StreamEntry } from "./stream-entries.js";
export { maxStreamsPerReadClaim } from "./stream-reads.js";
export type { GateClaimed } from "./gate-claims.js";


/**
 * The open credit a read-and-claim call hands out: the runner session of each slot, in order, and
 * the base of their lease tokens (slot k's token is `slotToken(tokenBase, k)`). One random base
 * per call instead of a token per slot keeps the script call small: a group with 100 slots of
 * credit would otherwise send 200 arguments for the one entry an idle queue holds.
 */
export interface ClaimSlots {
  sessions: readonly string[];
  tokenBase: string;
}

/** The lease token of slot `slot` (0-based) of a read-and-claim call; readClaimTasks builds the same. */
export function slotToken(tokenBase: string, slot: number): string {
  return `${tokenBase}.${slot}`;
}

/** An entry of readClaim: leased (or dropped) into `slot`, or left pending ('unclaimed'). */
export interface ReadClaimed {
  entry: StreamEntry;
  status: ClaimStatus | "unclaimed";
  /** Index into the slots, or -1 when the entry got none. */
  slot: number;
}

export interface ClaimRequest {
  entry: StreamEntry;
  token: string;
  expiryMs: number;
  sessionId: string;
  brokerId: string;
}

export interface QueueStoreOptions {
  /** How long the per-attempt record (the dedupe record) lives, seconds. */
  recordTtlSec: number;
  /** Pub/Sub channels ignore the key prefix; wake channels carry this one instead. */
  channelPrefix: string;
  /**
   * Called once per cluster and queue of an enqueue batch, right after the batch is written to
   * Redis: this process's readers of the queue can read now, without waiting for the wake-up
   * message to come back through Pub/Sub (a command sent later is run after the batch).
   */
  onQueued?(clusterId: string, queue: string): void;
}

export interface QueueStore {
  enqueue(tasks: readonly TaskEnvelope[]): Promise<{ enqueued: number; duplicates: number }>;
  /** Creates the consumer group (and the stream) of every queue a dispatch group reads. */
  ensureGroups(clusterId: string, queues: readonly string[]): Promise<void>;
  /** Non-blocking XREADGROUP of new entries over `streams`; entries interleaved across streams. */
  read(consumer: string, streams: readonly string[], count: number): Promise<StreamEntry[]>;
  /**
   * Reads new entries of `streams` (one cluster's, at most maxStreamsPerReadClaim) and leases the
   * k-th entry to the k-th slot in the same round trip, revocation check included. Entries beyond
   * the slots (and entries of an older broker, without their attempt member) stay pending,
   * 'unclaimed': the caller claims them later.
   */
  readClaim(
    consumer: string,
    clusterId: string,
    streams: readonly string[],
    count: number,
    slots: ClaimSlots,
    expiryMs: number,
    /** Read the streams one after the other in this order, for the slots left (priority bands). */
    inOrder?: boolean,
  ): Promise<ReadClaimed[]>;
  /**
   * Leases waiting gated attempts (a concurrency key or a rate limit) of `bands` (band queues of
   * one cluster, in reading order) into the slots, keys taking turns; each starts only while its
   * key runs fewer than its limit and its rate limit allows. Concurrency slots whose lease expired
   * before `holderCutoffMs` count as lost and are freed.
   */
  claimGated(
    consumer: string,
    clusterId: string,
    bands: readonly string[],
    slots: ClaimSlots,
    expiryMs: number,
    holderCutoffMs: number,
  ): Promise<GateClaimed>;
  /** The queue names of a cluster (priority bands and gated queues `<band>!g` included). */
  queueNames(clusterId: string): Promise<string[]>;
  /** Takes over entries pending longer than `minIdleMs` (read by a broker that died before leasing them). */
  autoclaim(consumer: string, stream: string, minIdleMs: number, count: number): Promise<StreamEntry[]>;
  /**
   * Remembers a revocation (the whole job, or some of its tasks) at Redis' clock, in the slot of
   * every cluster that has queues (a job's tasks can run in several clusters).
   */
  markRevoked(jobId: string, taskIds: readonly string[], ttlSec: number): Promise<void>;
  /**
   * Deletes the stream entries of queued attempts (a canceled job's) now; attempts already leased
   * or unknown are left alone. Returns how many entries were deleted.
   */
  drop(attempts: ReadonlyArray<{ clusterId: string; taskId: string; attempt: number }>): Promise<number>;
  /**
   * Turns entries read earlier into leases, or drops them: duplicates, and entries whose job or
   * task was revoked after they were queued (checked in the claim script).
   */
  claim(requests: readonly ClaimRequest[]): Promise<ClaimStatus[]>;
  requeue(entries: readonly StreamEntry[]): Promise<void>;
  /**
   * Gives back leases just granted to a session that closed before it got them: each attempt is
   * queued again at the end of its stream, without waiting for the lease to expire.
   */
  release(requests: readonly ClaimRequest[]): Promise<void>;
  stats(clusterId?: string): Promise<QueueStat[]>;
}


export function createQueueStore(redis: RedisClient, options: QueueStoreOptions): QueueStore {
  defineScripts(redis);
  keepEnvelopeBytes();
  const prefix = redis.options.keyPrefix ?? "";
  const reads: StreamReadContext = { redis, prefix, recordTtlSec: options.recordTtlSec };
  const writes: StreamWriteContext = { redis, prefix, recordTtlSec: options.recordTtlSec, channelPrefix: options.channelPrefix, onQueued: options.onQueued };
  const gates: GateContext = { redis, prefix, recordTtlSec: options.recordTtlSec, channelPrefix: options.channelPrefix };
  return {
    enqueue: (tasks) => enqueueTasks(writes, tasks),
    ensureGroups: (clusterId, queues) => ensureGroups(reads, clusterId, queues),
    read: (consumer, streams, count) => readEntries(reads, consumer, streams, count),
    autoclaim: (consumer, stream, minIdleMs, count) => autoclaimEntries(reads, consumer, stream, minIdleMs, count),
    readClaim: (consumer, clusterId, streams, count, slots, expiryMs, inOrder) =>
      readClaim(reads, consumer, clusterId, streams, count, slots, expiryMs, inOrder),
    claimGated: (consumer, clusterId, bands, slots, expiryMs, holderCutoffMs) =>
      claimGatedAttempts(gates, consumer, clusterId, bands, slots, expiryMs, holderCutoffMs),
    queueNames: (clusterId) => redis.smembers(queuesKey(clusterId)),
    markRevoked: (jobId, taskIds, ttlSec) => markRevoked(redis, jobId, taskIds, ttlSec),
    drop: (attempts) => dropEntries(writes, attempts),
    claim: (requests) => claimEntries(reads, requests),
    requeue: (entries) => requeueEntries(writes, entries.map((entry) => ({ entry }))),
    async release(requests) {
      const gated = requests.filter((r) => r.entry.gated);
      const streamed = gated.length === 0 ? requests : requests.filter((r) => !r.entry.gated);
      await Promise.all([
        requeueEntries(writes, streamed.map((r) => ({ entry: r.entry, token: r.token }))),
        releaseGated(gates, gated),
      ]);
    },
    stats: (clusterId) => readQueueStats(redis, prefix, clusterId),
  };
}
