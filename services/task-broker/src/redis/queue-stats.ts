// GetQueueStats' numbers: per queue its length, entries pending (read, not acknowledged), lag
// (not read yet) and the age of its oldest unread entry, read in three pipelines.
import { CONSUMER_GROUP, clusterKeyBase, clustersKey, queuesKey, streamKey } from "./keys.js";
import { baseQueue, gatedBand, isGateQueue } from "../task-identifier.js";
import { batch, type RedisClient } from "./connection.js";
import { ageOfId, type RawEntry } from "./stream-entries.js";

export interface QueueStat {
  clusterId: string;
  queue: string;
  length: number;
  pending: number;
  oldestAgeMs: number;
  lag: number;
  /** Waiting behind concurrency keys or rate limits (counted, not in a stream). */
  gated?: boolean;
}

interface Target {
  clusterId: string;
  queue: string;
  key: string;
}

function flatToObject(list: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < list.length; i += 2) out[String(list[i])] = list[i + 1];
  return out;
}

/** Every queue of `clusterId` (of every cluster without it), sorted by cluster and queue. */
async function listQueues(redis: RedisClient, clusterId: string | undefined): Promise<Target[]> {
  const clusters = clusterId ? [clusterId] : (await redis.smembers(clustersKey)).sort();
  const pipe = batch(redis);
  for (const c of clusters) pipe.smembers(queuesKey(c));
  const lists = ((await pipe.exec()) ?? []).map(([err, v]) => {
    if (err) throw err;
    return (v as string[]).sort();
  });
  const targets: Target[] = [];
  clusters.forEach((c, i) => {
    for (const q of lists[i] ?? []) targets.push({ clusterId: c, queue: q, key: streamKey(c, q) });
  });
  return targets;
}

/** Per queue stats; `prefix` is the connection's key prefix (XINFO gets it by hand). */
export async function readQueueStats(redis: RedisClient, prefix: string, clusterId?: string): Promise<QueueStat[]> {
  const all = await listQueues(redis, clusterId);
  const gated = all.filter((t) => isGateQueue(t.queue));
  const targets = gated.length === 0 ? all : all.filter((t) => !isGateQueue(t.queue));
  const waiting = await gatedStats(redis, gated);
  if (targets.length === 0) return waiting;
  const info = batch(redis);
  for (const t of targets) {
    info.xinfo("STREAM", prefix + t.key);
    info.xinfo("GROUPS", prefix + t.key);
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
    const group = ((groupsInfo as unknown[][]) ?? []).map(flatToObject).find((g) => g.name === CONSUMER_GROUP);
    const length = Number(s.length ?? 0);
    const pending = Number(group?.pending ?? 0);
    // Redis answers a null lag when it cannot tell (deleted entries in the range): estimate.
    const lag = group?.lag === null || group?.lag === undefined ? Math.max(0, length - pending) : Number(group.lag);
    stats.push({ clusterId: t.clusterId, queue: t.queue, length, pending, lag, oldestAgeMs: 0 });
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
  if (waiting.length === 0) return stats;
  return [...stats, ...waiting].sort((a, b) => (a.clusterId < b.clusterId ? -1 : a.clusterId > b.clusterId ? 1 : a.queue < b.queue ? -1 : 1));
}

/** Gated queues (`<band>!g`): the attempts waiting in their keys' lists, as counted by the gate scripts. */
async function gatedStats(redis: RedisClient, targets: Target[]): Promise<QueueStat[]> {
  if (targets.length === 0) return [];
  const pipe = batch(redis);
  for (const t of targets) pipe.hget(`${clusterKeyBase(t.clusterId)}gn`, gatedBand(t.queue));
  const replies = (await pipe.exec()) ?? [];
  return targets.map((t, i) => {
    const n = Math.max(0, Number(replies[i]?.[1] ?? 0));
    return { clusterId: t.clusterId, queue: t.queue, length: n, pending: 0, lag: n, oldestAgeMs: 0, gated: true };
  });
}

/**
 * One row per queue of an identifier: its priority and subtask bands (`!p<N>`, `!p<N>s`) summed
 * into the queue they belong to, its gated lists summed into one gated row. Bands are how the
 * broker orders a queue, not queues of their own. Keeps the input's order of first appearance.
 */
export function sumBands(stats: readonly QueueStat[]): QueueStat[] {
  const rows = new Map<string, QueueStat>();
  for (const s of stats) {
    const queue = baseQueue(s.queue);
    const key = `${s.clusterId}\n${queue}\n${s.gated ? "g" : ""}`;
    const row = rows.get(key);
    if (!row) {
      rows.set(key, { ...s, queue });
      continue;
    }
    row.length += s.length;
    row.pending += s.pending;
    row.lag += s.lag;
    row.oldestAgeMs = Math.max(row.oldestAgeMs, s.oldestAgeMs);
  }
  return [...rows.values()];
}
