// Writing the streams: enqueue (deduplicated per attempt, with its wake-ups), putting entries back
// (unassigned, or leased to a session that closed), dropping a canceled job's queued entries, and
// revocation markers. Every state change is one Lua call (script-calls.ts).
import { create, isMessage, toBinary } from "@bufbuild/protobuf";
import { EnqueueRequestSchema, ReportResultsResponseSchema, TaskEnvelopeSchema, type TaskEnvelope } from "@corral/proto";
import { keepWireBytes, wireBytesOf } from "@corral/wire";
import { bandQueue, gateQueue, queueName } from "../task-identifier.js";
import { batch, type RedisClient } from "./connection.js";
import {
  attemptKey,
  attemptMember,
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
import { DropEntriesCall, EnqueueGatedCall, EnqueueTasksCall, queueRequeueEntry, type GateSpec } from "./script-calls.js";
import { batchCalls, perItem } from "./scripts.js";
import type { StreamEntry } from "./stream-entries.js";

export interface StreamWriteContext {
  redis: RedisClient;
  /** The connection's key prefix: keys in ARGV get it by hand. */
  prefix: string;
  recordTtlSec: number;
  channelPrefix: string;
  onQueued?(clusterId: string, queue: string): void;
}

export interface EnqueueCounts {
  enqueued: number;
  duplicates: number;
}

/** Items per enqueue pipeline. */
const enqueueChunk = 1_000;

/**
 * A large batch (a fan-out's subtasks) goes in pipelines of at most `enqueueChunk`: the first
 * entries can be read while the rest is stored, and other commands on the shared connection
 * (claims, reads) do not queue behind all of it. Two pipelines are in flight, so the next one is
 * encoded here while Redis runs the one before.
 */
export async function enqueueTasks(ctx: StreamWriteContext, tasks: readonly TaskEnvelope[]): Promise<EnqueueCounts> {
  if (tasks.length <= enqueueChunk) return enqueuePipeline(ctx, tasks);
  let enqueued = 0;
  const window: Array<Promise<{ enqueued: number }>> = [];
  try {
    for (let i = 0; i < tasks.length; i += enqueueChunk) {
      const chunk = enqueuePipeline(ctx, tasks.slice(i, i + enqueueChunk));
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
}

async function enqueuePipeline(ctx: StreamWriteContext, tasks: readonly TaskEnvelope[]): Promise<EnqueueCounts> {
  if (tasks.length === 0) return { enqueued: 0, duplicates: 0 };
  const { prefix } = ctx;
  const now = Date.now();
  const pipe = batch(ctx.redis);
  const clusters = new Set<string>();
  /** One wake-up per cluster and queue of the batch, after its entries. */
  const wakes = new Map<string, [channel: string, clusterId: string, queue: string]>();
  const queueOf = tasks.map((t) => bandQueue(queueName(t.identifier!.name, t.identifier!.version), t.priority, t.parentId !== ""));
  const gates = tasks.map(gateOf);
  // Gated attempts (a concurrency key or a rate limit) wait in their keys' lists (enqueueGated);
  // the others take the streams as they always did. Calls are per cluster and kind.
  const calls = batchCalls(tasks, (t, i) => (gates[i] ? `${t.clusterId}\ng` : t.clusterId));
  for (const call of calls) {
    const clusterId = tasks[call[0]!]!.clusterId;
    clusters.add(clusterId);
    const channel = wakeChannel(ctx.channelPrefix, clusterId);
    if (gates[call[0]!]) {
      const script = new EnqueueGatedCall(queuesKey(clusterId), prefix + clusterKeyBase(clusterId), now);
      for (const i of call) {
        const t = tasks[i]!;
        const wake = gateQueue(queueOf[i]!);
        wakes.set(`${channel}\n${wake}`, [channel, clusterId, wake]);
        script.add(attemptMember(t.taskId, t.attempt), t.jobId, t.teamId, encode(t), queueOf[i]!, timeoutMsOf(t), gates[i]!);
      }
      script.queue(pipe);
      continue;
    }
    const script = new EnqueueTasksCall(queuesKey(clusterId), CONSUMER_GROUP, ctx.recordTtlSec, now);
    for (const i of call) {
      const t = tasks[i]!;
      const queue = queueOf[i]!;
      wakes.set(`${channel}\n${queue}`, [channel, clusterId, queue]);
      const record = prefix + attemptKey(clusterId, t.taskId, t.attempt);
      script.add(prefix + streamKey(clusterId, queue), record, t.jobId, t.teamId, encode(t), queue, attemptMember(t.taskId, t.attempt), timeoutMsOf(t));
    }
    script.queue(pipe);
  }
  pipe.sadd(clustersKey, ...clusters);
  for (const [channel, , queue] of wakes.values()) pipe.publish(channel, queue);
  const sent = pipe.exec();
  if (ctx.onQueued) for (const [, clusterId, queue] of wakes.values()) ctx.onQueued(clusterId, queue);
  const added = perItem<number>((await sent) ?? [], calls, tasks.length);
  const enqueued = added.filter((v) => v === 1).length;
  return { enqueued, duplicates: tasks.length - enqueued };
}

/**
 * Envelopes reach the broker in Enqueue requests and in the ready tasks of ReportResults' answers:
 * from now on their bytes are kept as they arrived, and stored so (see encode).
 */
export function keepEnvelopeBytes(): void {
  keepWireBytes(EnqueueRequestSchema, EnqueueRequestSchema.field.tasks);
  keepWireBytes(ReportResultsResponseSchema, ReportResultsResponseSchema.field.ready);
}

/** The envelope as stored: base64 protobuf, the bytes it arrived in when they were kept. */
function encode(t: TaskEnvelope): string {
  const wire = wireBytesOf(t);
  if (wire) return Buffer.from(wire.buffer, wire.byteOffset, wire.byteLength).toString("base64");
  // Envelopes from a request or a ledger answer are messages already: no copy before encoding.
  const message = isMessage(t, TaskEnvelopeSchema) ? t : create(TaskEnvelopeSchema, t);
  return Buffer.from(toBinary(TaskEnvelopeSchema, message)).toString("base64");
}

function timeoutMsOf(t: TaskEnvelope): number {
  return t.executionTimeout ? Number(t.executionTimeout.seconds) * 1000 + Math.floor(t.executionTimeout.nanos / 1e6) : 0;
}

/** The gate of an attempt that names a concurrency key or a rate limit; undefined for the others. */
export function gateOf(t: TaskEnvelope): GateSpec | undefined {
  const c = t.concurrency?.key ? t.concurrency : undefined;
  const r = t.rateLimit?.name ? t.rateLimit : undefined;
  if (!c && !r) return undefined;
  const periodMs = r?.period ? Number(r.period.seconds) * 1000 + Math.floor(r.period.nanos / 1e6) : 0;
  return {
    concurrencyKey: c?.key ?? "",
    concurrencyLimit: Math.max(1, c?.limit ?? 1),
    rateLimitName: r?.name ?? "",
    rateLimit: Math.max(1, r?.limit ?? 1),
    ratePeriodMs: Math.max(1, periodMs),
  };
}

/** Puts entries back at the end of their streams; with a token, the lease just granted is dropped first. */
export async function requeueEntries(
  ctx: StreamWriteContext,
  items: ReadonlyArray<{ entry: StreamEntry; token?: string }>,
): Promise<void> {
  if (items.length === 0) return;
  const pipe = batch(ctx.redis);
  for (const { entry: e, token } of items) {
    queueRequeueEntry(pipe, {
      stream: e.stream,
      record: attemptKey(e.clusterId, e.taskId, e.attempt),
      leasesKey: leasesKey(e.clusterId),
      group: CONSUMER_GROUP,
      entryId: e.id,
      envelope: e.raw,
      enqueuedAtMs: e.enqueuedAtMs,
      wakeChannel: wakeChannel(ctx.channelPrefix, e.clusterId),
      queue: e.queue,
      member: attemptMember(e.taskId, e.attempt),
      jobId: e.jobId,
      token,
    });
  }
  const results = (await pipe.exec()) ?? [];
  for (const [err] of results) if (err) throw err;
}

/** Deletes the entries of queued attempts; returns how many were deleted. */
export async function dropEntries(
  ctx: StreamWriteContext,
  attempts: ReadonlyArray<{ clusterId: string; taskId: string; attempt: number }>,
): Promise<number> {
  if (attempts.length === 0) return 0;
  const pipe = batch(ctx.redis);
  const calls = batchCalls(attempts, (a) => a.clusterId);
  for (const call of calls) {
    const clusterId = attempts[call[0]!]!.clusterId;
    const script = new DropEntriesCall(queuesKey(clusterId), CONSUMER_GROUP, ctx.recordTtlSec);
    for (const i of call) script.add(ctx.prefix + attemptKey(clusterId, attempts[i]!.taskId, attempts[i]!.attempt));
    script.queue(pipe);
  }
  let deleted = 0;
  for (const [err, n] of (await pipe.exec()) ?? []) {
    if (err) throw err;
    deleted += DropEntriesCall.parse(n);
  }
  return deleted;
}

/** Revocation markers at Redis' clock, in the slot of every cluster that has queues. */
export async function markRevoked(redis: RedisClient, jobId: string, taskIds: readonly string[], ttlSec: number): Promise<void> {
  const [[sec, micros], clusters] = await Promise.all([redis.time(), redis.smembers(clustersKey)]);
  const now = String(Number(sec) * 1000 + Math.floor(Number(micros) / 1000));
  const pipe = batch(redis);
  for (const clusterId of clusters) {
    if (taskIds.length === 0) pipe.set(revokedJobKey(clusterId, jobId), now, "EX", ttlSec);
    for (const taskId of taskIds) pipe.set(revokedTaskKey(clusterId, taskId), now, "EX", ttlSec);
  }
  const results = (await pipe.exec()) ?? [];
  for (const [err] of results) if (err) throw err;
}
