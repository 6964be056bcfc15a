// Streams of ready tasks: enqueue (deduplicated per attempt), reading for a dispatch group,
// claiming entries as leases, re-queueing unassigned entries, and queue statistics.
import { create, fromBinary, isMessage, toBinary } from "@bufbuild/protobuf";
import { TaskEnvelopeSchema, type TaskEnvelope } from "@corral/proto";
import { queueName } from "../task-identifier.js";
import {
  attemptKey,
  attemptMember,
  splitAttemptMember,
  clusterKeyBase,
  clustersKey,
  CONSUMER_GROUP,
  leasesKey,
  queuesKey,
  revokedJobKey,
  revokedTaskKey,
  streamKey,
  wakeChannel,
} from "./keys.js";
import type { ChainableCommander } from "ioredis";
import { batch, type RedisClient } from "./connection.js";
import { batchCalls, defineScripts, groupIndices, perItem, scripts } from "./scripts.js";

export interface StreamEntry {
  /** The stream key without the connection's key prefix. */
  stream: string;
  id: string;
  clusterId: string;
  /** `<name>:<version>` of the stream. */
  queue: string;
  taskId: string;
  attempt: number;
  jobId: string;
  /** The envelope's protobuf bytes, passed on to the runner as they are (never decoded here). */
  bytes: Uint8Array;
  /** The envelope as stored (base64 protobuf), for re-queueing. */
  raw: string;
  enqueuedAtMs: number;
}

export type ClaimStatus = "leased" | "revoked" | "duplicate" | "inflight";

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

/** Slots name their session by its index in the call's session list, four hex digits each. */
const maxSessionsPerReadClaim = 0xffff;

/** An entry of readClaim: leased (or dropped) into `slot`, or left pending ('unclaimed'). */
export interface ReadClaimed {
  entry: StreamEntry;
  status: ClaimStatus | "unclaimed";
  /** Index into the slots, or -1 when the entry got none. */
  slot: number;
}

/** A read-and-claim call names its streams in one script call (Lua's unpack has a limit). */
export const maxStreamsPerReadClaim = 1_000;

export interface ClaimRequest {
  entry: StreamEntry;
  token: string;
  expiryMs: number;
  sessionId: string;
  brokerId: string;
}

export interface QueueStat {
  clusterId: string;
  queue: string;
  length: number;
  pending: number;
  oldestAgeMs: number;
  lag: number;
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
  ): Promise<ReadClaimed[]>;
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

type RawEntry = [string, string[] | null];

function fieldsOf(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) out[list[i]!] = list[i + 1]!;
  return out;
}

function flatToObject(list: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < list.length; i += 2) out[String(list[i])] = list[i + 1];
  return out;
}

interface StreamOf {
  stream: string;
  clusterId: string;
  queue: string;
}

/** A stream key (without the key prefix) with its cluster and queue: `corral:{<cluster>}:q:<queue>`. */
function parseStreamKey(stream: string): StreamOf {
  const open = stream.indexOf("{");
  const close = stream.indexOf("}:q:", open);
  return { stream, clusterId: stream.slice(open + 1, close), queue: stream.slice(close + 4) };
}

/** The Redis server time (ms) at which a stream entry was added. */
function idMs(id: string): number {
  const ms = Number(id.split("-")[0]);
  return Number.isFinite(ms) ? ms : 0;
}

function ageOfId(id: string, now: number): number {
  return Math.max(0, now - idMs(id));
}

export function createQueueStore(redis: RedisClient, options: QueueStoreOptions): QueueStore {
  defineScripts(redis);
  const prefix = redis.options.keyPrefix ?? "";

  function decode({ stream, clusterId, queue }: StreamOf, raw: RawEntry): StreamEntry | undefined {
    const [id, list] = raw;
    if (!list) return undefined; // deleted while pending
    const f = fieldsOf(list);
    if (!f.task) return undefined;
    const bytes = Buffer.from(f.task, "base64");
    let taskId: string;
    let attempt: number;
    let jobId: string;
    if (f.m !== undefined && f.j !== undefined) {
      ({ taskId, attempt } = splitAttemptMember(f.m));
      jobId = f.j;
    } else {
      // An entry written before the stream carried its task's keys (an older broker).
      const envelope = fromBinary(TaskEnvelopeSchema, bytes);
      ({ taskId, attempt, jobId } = envelope);
    }
    return { stream, id, clusterId, queue, taskId, attempt, jobId, raw: f.task, bytes, enqueuedAtMs: Number(f.t ?? 0) };
  }

  /** Queues the claim script calls of `requests` on `pipe` (one per cluster and batch). */
  function queueClaims(pipe: ChainableCommander, requests: readonly ClaimRequest[]): number[][] {
    const calls = batchCalls(requests, (r) => `${r.entry.clusterId}\n${r.brokerId}`);
    for (const call of calls) {
      const first = requests[call[0]!]!;
      const clusterId = first.entry.clusterId;
      const args: Array<string | number> = [CONSUMER_GROUP, options.recordTtlSec, first.brokerId, prefixed(clusterKeyBase(clusterId))];
      for (const i of call) {
        const r = requests[i]!;
        const t = r.entry;
        args.push(prefixed(attemptKey(clusterId, t.taskId, t.attempt)), prefixed(r.entry.stream));
        args.push(r.entry.id, r.token, r.expiryMs, r.sessionId, attemptMember(t.taskId, t.attempt), t.jobId, t.enqueuedAtMs);
      }
      scripts.claimTasks(pipe, [leasesKey(clusterId)], args);
    }
    return calls;
  }

  /** Items per enqueue pipeline. */
  const enqueueChunk = 1_000;

  async function enqueueChunkOf(tasks: readonly TaskEnvelope[]): Promise<{ enqueued: number; duplicates: number }> {
    if (tasks.length === 0) return { enqueued: 0, duplicates: 0 };
    const now = Date.now();
    const pipe = batch(redis);
    const clusters = new Set<string>();
    /** One wake-up per cluster and queue of the batch, after its entries. */
    const wakes = new Map<string, [channel: string, clusterId: string, queue: string]>();
    const queueOf = tasks.map((t) => queueName(t.identifier!.name, t.identifier!.version));
    const calls = batchCalls(tasks, (t) => t.clusterId);
    for (const call of calls) {
      const clusterId = tasks[call[0]!]!.clusterId;
      clusters.add(clusterId);
      const channel = wakeChannel(options.channelPrefix, clusterId);
      const args: Array<string | number> = [CONSUMER_GROUP, options.recordTtlSec, now];
      for (const i of call) {
        const t = tasks[i]!;
        const queue = queueOf[i]!;
        wakes.set(`${channel}\n${queue}`, [channel, clusterId, queue]);
        // Envelopes from a request or a ledger answer are messages already: no copy before encoding.
        const message = isMessage(t, TaskEnvelopeSchema) ? t : create(TaskEnvelopeSchema, t);
        const raw = Buffer.from(toBinary(TaskEnvelopeSchema, message)).toString("base64");
        args.push(prefixed(streamKey(clusterId, queue)), prefixed(attemptKey(clusterId, t.taskId, t.attempt)));
        args.push(t.jobId, t.teamId, raw, queue, attemptMember(t.taskId, t.attempt));
      }
      scripts.enqueueTasks(pipe, [queuesKey(clusterId)], args);
    }
    pipe.sadd(clustersKey, ...clusters);
    for (const [channel, , queue] of wakes.values()) pipe.publish(channel, queue);
    const sent = pipe.exec();
    if (options.onQueued) for (const [, clusterId, queue] of wakes.values()) options.onQueued(clusterId, queue);
    const added = perItem<number>((await sent) ?? [], calls, tasks.length);
    const enqueued = added.filter((v) => v === 1).length;
    return { enqueued, duplicates: tasks.length - enqueued };
  }

  async function requeueEntries(items: ReadonlyArray<{ entry: StreamEntry; token?: string }>): Promise<void> {
    if (items.length === 0) return;
    const pipe = batch(redis);
    for (const { entry: e, token } of items) {
      const member = attemptMember(e.taskId, e.attempt);
      const args: Array<string | number> = [
        CONSUMER_GROUP,
        e.id,
        e.raw,
        e.enqueuedAtMs,
        wakeChannel(options.channelPrefix, e.clusterId),
        e.queue,
        member,
        e.jobId,
      ];
      if (token) args.push(token, prefixed(leasesKey(e.clusterId)));
      scripts.requeueEntry(pipe, [e.stream, attemptKey(e.clusterId, e.taskId, e.attempt)], args);
    }
    const results = (await pipe.exec()) ?? [];
    for (const [err] of results) if (err) throw err;
  }

  // XGROUP and XINFO have no key position ioredis knows of: they get the prefix by hand (and on a
  // Redis Cluster reach their node through a MOVED redirect, see connection.ts).
  const prefixed = (key: string) => prefix + key;
  const unprefix = (key: string) => (key.startsWith(prefix) ? key.slice(prefix.length) : key);

  return {
    async enqueue(tasks) {
      // A large batch (a fan-out's subtasks) goes in pipelines of at most `enqueueChunk`: the
      // first entries can be read while the rest is stored, and other commands on the shared
      // connection (claims, reads) do not queue behind all of it. Two pipelines are in flight, so
      // the next one is encoded here while Redis runs the one before.
      if (tasks.length <= enqueueChunk) return enqueueChunkOf(tasks);
      let enqueued = 0;
      const window: Array<Promise<{ enqueued: number }>> = [];
      try {
        for (let i = 0; i < tasks.length; i += enqueueChunk) {
          const chunk = enqueueChunkOf(tasks.slice(i, i + enqueueChunk));
          chunk.catch(() => {}); // awaited below; a failure must not count as unhandled meanwhile
          window.push(chunk);
          if (window.length >= 2) enqueued += (await window.shift()!).enqueued;
        }
        for (const chunk of window.splice(0)) enqueued += (await chunk).enqueued;
      } catch (err) {
        await Promise.allSettled(window);
        throw err;
      }
      return { enqueued, duplicates: tasks.length - enqueued };
    },

    async ensureGroups(clusterId, queues) {
      const pipe = batch(redis);
      for (const q of queues) pipe.xgroup("CREATE", prefixed(streamKey(clusterId, q)), CONSUMER_GROUP, "0", "MKSTREAM");
      pipe.sadd(queuesKey(clusterId), ...queues);
      pipe.sadd(clustersKey, clusterId);
      const results = (await pipe.exec()) ?? [];
      for (const [err] of results) {
        if (err && !String(err.message).includes("BUSYGROUP")) throw err;
      }
    },

    async read(consumer, streams, count) {
      const reply = (await redis.xreadgroup(
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
      // Interleave so a batch is fair across the identifiers of the group.
      const perStream = reply.map(([key, entries]) => ({ of: parseStreamKey(unprefix(key)), entries }));
      const out: StreamEntry[] = [];
      for (let i = 0; perStream.some((s) => i < s.entries.length); i++) {
        for (const s of perStream) {
          const raw = s.entries[i];
          if (!raw) continue;
          const e = decode(s.of, raw);
          if (e) out.push(e);
        }
      }
      return out;
    },

    async autoclaim(consumer, stream, minIdleMs, count) {
      const reply = (await redis.xautoclaim(stream, CONSUMER_GROUP, consumer, minIdleMs, "0", "COUNT", count)) as [
        string,
        RawEntry[],
        string[]?,
      ];
      const out: StreamEntry[] = [];
      const of = parseStreamKey(stream);
      for (const raw of reply[1] ?? []) {
        const e = decode(of, raw);
        if (e) out.push(e);
      }
      return out;
    },

    async readClaim(consumer, clusterId, streams, count, slots, expiryMs) {
      if (streams.length > maxStreamsPerReadClaim) throw new Error(`readClaim takes at most ${maxStreamsPerReadClaim} streams`);
      const args: Array<string | number> = [
        CONSUMER_GROUP,
        consumer,
        count,
        options.recordTtlSec,
        expiryMs,
        prefixed(clusterKeyBase(clusterId)),
        streams.length,
        ...streams.map(prefixed),
      ];
      const index = new Map<string, number>();
      let map = "";
      for (const session of slots.sessions) {
        let i = index.get(session);
        if (i === undefined) {
          i = index.size + 1;
          if (i > maxSessionsPerReadClaim) break;
          index.set(session, i);
        }
        map += i.toString(16).padStart(4, "0");
      }
      args.push(slots.tokenBase, index.size, ...index.keys(), map);
      const reply = (await scripts.readClaimTasks(redis, [leasesKey(clusterId)], args)) as Array<
        [number, string, string, string, string, string, ClaimStatus | "unclaimed", number]
      >;
      const of = streams.map(parseStreamKey);
      const out: ReadClaimed[] = [];
      for (const [index, id, task, t, m, j, status, slot] of reply) {
        const list = ["task", task, "t", t];
        if (m !== "") list.push("m", m, "j", j);
        const entry = decode(of[index - 1]!, [id, list]);
        if (entry) out.push({ entry, status, slot: slot - 1 });
      }
      return out;
    },

    async markRevoked(jobId, taskIds, ttlSec) {
      const [[sec, micros], clusters] = await Promise.all([redis.time(), redis.smembers(clustersKey)]);
      const now = String(Number(sec) * 1000 + Math.floor(Number(micros) / 1000));
      const pipe = batch(redis);
      for (const clusterId of clusters) {
        if (taskIds.length === 0) pipe.set(revokedJobKey(clusterId, jobId), now, "EX", ttlSec);
        for (const taskId of taskIds) pipe.set(revokedTaskKey(clusterId, taskId), now, "EX", ttlSec);
      }
      const results = (await pipe.exec()) ?? [];
      for (const [err] of results) if (err) throw err;
    },

    async drop(attempts) {
      if (attempts.length === 0) return 0;
      const pipe = batch(redis);
      const calls = batchCalls(attempts, (a) => a.clusterId);
      for (const call of calls) {
        const clusterId = attempts[call[0]!]!.clusterId;
        const args: Array<string | number> = [CONSUMER_GROUP, options.recordTtlSec];
        for (const i of call) args.push(prefixed(attemptKey(clusterId, attempts[i]!.taskId, attempts[i]!.attempt)));
        scripts.dropEntries(pipe, [queuesKey(clusterId)], args);
      }
      let deleted = 0;
      for (const [err, n] of (await pipe.exec()) ?? []) {
        if (err) throw err;
        deleted += Number(n);
      }
      return deleted;
    },

    async claim(requests) {
      if (requests.length === 0) return [];
      const pipe = batch(redis);
      const calls = queueClaims(pipe, requests);
      return perItem<ClaimStatus>((await pipe.exec()) ?? [], calls, requests.length);
    },

    async requeue(entries) {
      await requeueEntries(entries.map((entry) => ({ entry })));
    },

    async release(requests) {
      await requeueEntries(requests.map((r) => ({ entry: r.entry, token: r.token })));
    },

    async stats(clusterId) {
      const clusters = clusterId ? [clusterId] : (await redis.smembers(clustersKey)).sort();
      const queuesPipe = batch(redis);
      for (const c of clusters) queuesPipe.smembers(queuesKey(c));
      const queueLists = ((await queuesPipe.exec()) ?? []).map(([err, v]) => {
        if (err) throw err;
        return (v as string[]).sort();
      });
      const targets: Array<{ clusterId: string; queue: string; key: string }> = [];
      clusters.forEach((c, i) => {
        for (const q of queueLists[i] ?? []) targets.push({ clusterId: c, queue: q, key: streamKey(c, q) });
      });
      if (targets.length === 0) return [];
      const info = batch(redis);
      for (const t of targets) {
        info.xinfo("STREAM", prefixed(t.key));
        info.xinfo("GROUPS", prefixed(t.key));
      }
      const infoResults = (await info.exec()) ?? [];
      const now = Date.now();
      const stats: QueueStat[] = [];
      const oldest = batch(redis);
      const needOldest: number[] = [];
      targets.forEach((t, i) => {
        const [streamErr, streamInfo] = infoResults[2 * i]!;
        const [groupsErr, groupsInfo] = infoResults[2 * i + 1]!;
        if (streamErr || groupsErr) return; // the stream vanished (deleted by hand): skip it
        const s = flatToObject(streamInfo as unknown[]);
        const group = ((groupsInfo as unknown[][]) ?? [])
          .map(flatToObject)
          .find((g) => g.name === CONSUMER_GROUP);
        const pending = Number(group?.pending ?? 0);
        // Redis answers a null lag when it cannot tell (deleted entries in the range): estimate.
        const lag =
          group?.lag === null || group?.lag === undefined ? Math.max(0, Number(s.length ?? 0) - pending) : Number(group.lag);
        stats.push({
          clusterId: t.clusterId,
          queue: t.queue,
          length: Number(s.length ?? 0),
          pending,
          lag,
          oldestAgeMs: 0,
        });
        if (lag > 0) {
          needOldest.push(stats.length - 1);
          oldest.xrange(t.key, `(${String(group?.["last-delivered-id"] ?? "0-0")}`, "+", "COUNT", 1);
        }
      });
      if (needOldest.length > 0) {
        const res = (await oldest.exec()) ?? [];
        needOldest.forEach((statIndex, j) => {
          const [err, entries] = res[j]!;
          const first = !err ? (entries as RawEntry[])[0] : undefined;
          if (first) stats[statIndex]!.oldestAgeMs = ageOfId(first[0], now);
        });
      }
      return stats;
    },
  };
}
