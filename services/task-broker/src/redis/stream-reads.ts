// Reading the streams for a dispatch group: consumer groups, non-blocking XREADGROUP, taking over
// entries of a broker that died, and turning entries into leases (claimTasks, or readClaimTasks
// which reads and leases in one round trip).
import { batch, type RedisClient } from "./connection.js";
import { attemptKey, attemptMember, clusterKeyBase, clustersKey, CONSUMER_GROUP, leasesKey, queuesKey, streamKey } from "./keys.js";
import { ClaimTasksCall, readClaimTasks, type ClaimStatus } from "./script-calls.js";
import { batchCalls, perItem } from "./scripts.js";
import { decodeEntry, parseStreamKey, type RawEntry, type StreamEntry } from "./stream-entries.js";
import type { ClaimRequest, ClaimSlots, ReadClaimed } from "./queue-store.js";

export interface StreamReadContext {
  redis: RedisClient;
  /** The connection's key prefix: keys in ARGV, XGROUP and XINFO get it by hand. */
  prefix: string;
  recordTtlSec: number;
}

/** A read-and-claim call names its streams in one script call (Lua's unpack has a limit). */
export const maxStreamsPerReadClaim = 1_000;

/** Slots name their session by its index in the call's session list, four hex digits each. */
const maxSessionsPerReadClaim = 0xffff;

/** Redis answered that a consumer group exists already: the one error text ensureGroups reads. */
function isBusyGroup(err: Error): boolean {
  return String(err.message).includes("BUSYGROUP");
}

// XGROUP has no key position ioredis knows of: it gets the prefix by hand (and on a Redis Cluster
// reaches its node through a MOVED redirect, see connection.ts).
export async function ensureGroups(ctx: StreamReadContext, clusterId: string, queues: readonly string[]): Promise<void> {
  const pipe = batch(ctx.redis);
  for (const q of queues) pipe.xgroup("CREATE", ctx.prefix + streamKey(clusterId, q), CONSUMER_GROUP, "0", "MKSTREAM");
  pipe.sadd(queuesKey(clusterId), ...queues);
  pipe.sadd(clustersKey, clusterId);
  const results = (await pipe.exec()) ?? [];
  for (const [err] of results) {
    if (err && !isBusyGroup(err)) throw err;
  }
}

export async function readEntries(ctx: StreamReadContext, consumer: string, streams: readonly string[], count: number): Promise<StreamEntry[]> {
  const reply = (await ctx.redis.xreadgroup(
    "GROUP",
    CONSUMER_GROUP,
    consumer,
    "COUNT",
    count,
    "STREAMS",
    ...streams,
    ...streams.map(() => ">"),
  )) as Array<[string, RawEntry[]]> | null;
  if (!reply) return [];
  const unprefix = (key: string) => (key.startsWith(ctx.prefix) ? key.slice(ctx.prefix.length) : key);
  // Interleave so a batch is fair across the identifiers of the group.
  const perStream = reply.map(([key, entries]) => ({ of: parseStreamKey(unprefix(key)), entries }));
  const out: StreamEntry[] = [];
  for (let i = 0; perStream.some((s) => i < s.entries.length); i++) {
    for (const s of perStream) {
      const raw = s.entries[i];
      if (!raw) continue;
      const e = decodeEntry(s.of, raw);
      if (e) out.push(e);
    }
  }
  return out;
}

export async function autoclaimEntries(
  ctx: StreamReadContext,
  consumer: string,
  stream: string,
  minIdleMs: number,
  count: number,
): Promise<StreamEntry[]> {
  const reply = (await ctx.redis.xautoclaim(stream, CONSUMER_GROUP, consumer, minIdleMs, "0", "COUNT", count)) as [
    string,
    RawEntry[],
    string[]?,
  ];
  const out: StreamEntry[] = [];
  const of = parseStreamKey(stream);
  for (const raw of reply[1] ?? []) {
    const e = decodeEntry(of, raw);
    if (e) out.push(e);
  }
  return out;
}

/** The distinct sessions of a claim call's slots and, per slot, its session's 1-based index (four hex digits). */
export function slotMapOf(sessions: readonly string[]): { index: Map<string, number>; slotMap: string } {
  const index = new Map<string, number>();
  let slotMap = "";
  for (const session of sessions) {
    let i = index.get(session);
    if (i === undefined) {
      i = index.size + 1;
      if (i > maxSessionsPerReadClaim) break;
      index.set(session, i);
    }
    slotMap += i.toString(16).padStart(4, "0");
  }
  return { index, slotMap };
}

export async function readClaim(
  ctx: StreamReadContext,
  consumer: string,
  clusterId: string,
  streams: readonly string[],
  count: number,
  slots: ClaimSlots,
  expiryMs: number,
  inOrder = false,
): Promise<ReadClaimed[]> {
  if (streams.length > maxStreamsPerReadClaim) throw new Error(`readClaim takes at most ${maxStreamsPerReadClaim} streams`);
  const { index, slotMap } = slotMapOf(slots.sessions);
  const of = streams.map(parseStreamKey);
  const out: ReadClaimed[] = [];
  await readClaimTasks(
    ctx.redis,
    {
      leasesKey: leasesKey(clusterId),
      group: CONSUMER_GROUP,
      consumer,
      countPerStream: count,
      recordTtlSec: ctx.recordTtlSec,
      expiryMs,
      clusterKeyBase: ctx.prefix + clusterKeyBase(clusterId),
      streams: streams.map((s) => ctx.prefix + s),
      tokenBase: slots.tokenBase,
      sessions: index.keys(),
      sessionCount: index.size,
      slotMap,
    },
    (stream, id, fields, status, slot) => {
      const entry = decodeEntry(of[stream]!, [id, fields]);
      if (entry) out.push({ entry, status, slot });
    },
    inOrder,
  );
  return out;
}

export async function claimEntries(ctx: StreamReadContext, requests: readonly ClaimRequest[]): Promise<ClaimStatus[]> {
  if (requests.length === 0) return [];
  const pipe = batch(ctx.redis);
  const calls = batchCalls(requests, (r) => `${r.entry.clusterId}\n${r.brokerId}`);
  for (const call of calls) {
    const first = requests[call[0]!]!;
    const clusterId = first.entry.clusterId;
    const script = new ClaimTasksCall(leasesKey(clusterId), CONSUMER_GROUP, ctx.recordTtlSec, first.brokerId, ctx.prefix + clusterKeyBase(clusterId));
    for (const i of call) {
      const r = requests[i]!;
      const t = r.entry;
      const member = attemptMember(t.taskId, t.attempt);
      script.add(ctx.prefix + attemptKey(clusterId, t.taskId, t.attempt), ctx.prefix + t.stream, t.id, r.token, r.expiryMs, r.sessionId, member, t.jobId, t.enqueuedAtMs);
    }
    script.queue(pipe);
  }
  return perItem<ClaimStatus>((await pipe.exec()) ?? [], calls, requests.length);
}
