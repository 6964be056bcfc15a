// Leases in Redis: extend (heartbeat), resume (reconnect), complete (result durable), expire
// (reaper), and reading an attempt's record to answer a late result.
import {
  attemptKey,
  attemptMember,
  attemptPrefix,
  clusterKeyBase,
  clustersKey,
  CONSUMER_GROUP,
  expiringKey,
  leasesKey,
  splitAttemptMember,
  wakeChannel,
} from "./keys.js";
import { batch, type RedisClient } from "./connection.js";
import { CompleteLeasesCall, extendLeases, parseExpireLeases, queueExpireLeases, resumeLeases } from "./script-calls.js";
import { batchCalls, defineScripts, perItem } from "./scripts.js";
import { parseStreamKey } from "./stream-entries.js";

export interface LeaseKey {
  clusterId: string;
  taskId: string;
  attempt: number;
  token: string;
}

export interface ExpiredLease {
  clusterId: string;
  taskId: string;
  attempt: number;
  jobId: string;
  sessionId: string;
  brokerId: string;
  /** The lease ran out after the attempt's execution deadline: a timeout, not a lost runner. */
  timedOut: boolean;
}

export interface ResumedLease {
  jobId: string;
  /** The queue (`<name>:<version>`, a band's suffix kept) the lease was read from; '' if unknown. */
  queue: string;
}

/** The queue of each resumed lease, from the stream key its record names. */
function withQueues(resumed: ReadonlyMap<string, { jobId: string; stream: string }>): Map<string, ResumedLease> {
  const out = new Map<string, ResumedLease>();
  for (const [member, r] of resumed) out.set(member, { jobId: r.jobId, queue: r.stream ? parseStreamKey(r.stream).queue : "" });
  return out;
}

export interface AttemptRecord {
  state: "queued" | "leased" | "done" | "expired" | "revoked";
  token: string;
  sessionId: string;
}

export interface LeaseStoreOptions {
  /** How long a done or expired attempt record is kept, seconds (answers late results). */
  doneTtlSec: number;
  /** Pub/Sub channels ignore the key prefix; wake channels carry this one (a freed concurrency slot wakes its key's readers). */
  channelPrefix: string;
}

export interface LeaseStore {
  /** Extends the session's leases of one cluster; returns the members it no longer holds. */
  extend(clusterId: string, sessionId: string, members: readonly string[], expiryMs: number): Promise<string[]>;
  /** Re-binds still-valid leases to `sessionId`; returns member → job and queue of those resumed. */
  resume(
    clusterId: string,
    sessionId: string,
    brokerId: string,
    leases: ReadonlyArray<{ member: string; token: string }>,
    expiryMs: number,
  ): Promise<Map<string, ResumedLease>>;
  /** Releases leases whose results are durable; true per lease when the token still matched. */
  complete(leases: readonly LeaseKey[]): Promise<boolean[]>;
  /** Expires due leases of every cluster; each is returned to exactly one caller. */
  expireDue(limitPerCluster: number, reportTimeoutMs: number): Promise<ExpiredLease[]>;
  /** The expiry of these leases is now recorded by job-service. */
  expiryReported(leases: ReadonlyArray<{ clusterId: string; taskId: string; attempt: number }>): Promise<void>;
  attempt(clusterId: string, taskId: string, attempt: number): Promise<AttemptRecord | undefined>;
  /** Leases the cluster's runners hold now (expired ones not yet reaped included). */
  count(clusterId: string): Promise<number>;
}

export function createLeaseStore(redis: RedisClient, options: LeaseStoreOptions): LeaseStore {
  defineScripts(redis);
  // Keys and key prefixes in ARGV get no prefix from ioredis: the caller adds it.
  const prefix = redis.options.keyPrefix ?? "";
  return {
    count: (clusterId) => redis.zcard(leasesKey(clusterId)),

    extend(clusterId, sessionId, members, expiryMs) {
      if (members.length === 0) return Promise.resolve([]);
      const recordPrefix = prefix + attemptPrefix(clusterId);
      return extendLeases(redis, { leasesKey: leasesKey(clusterId), recordPrefix, sessionId, expiryMs, nowMs: Date.now(), members });
    },

    async resume(clusterId, sessionId, brokerId, leases, expiryMs) {
      if (leases.length === 0) return new Map();
      const recordPrefix = prefix + attemptPrefix(clusterId);
      return withQueues(await resumeLeases(redis, { leasesKey: leasesKey(clusterId), recordPrefix, sessionId, brokerId, expiryMs, nowMs: Date.now(), leases }));
    },

    complete: (leases) => completeLeases(redis, prefix, options, leases),

    expireDue: (limitPerCluster, reportTimeoutMs) => expireDueLeases(redis, prefix, options, limitPerCluster, reportTimeoutMs),

    async expiryReported(leases) {
      if (leases.length === 0) return;
      const pipe = batch(redis);
      for (const l of leases) pipe.zrem(expiringKey(l.clusterId), attemptMember(l.taskId, l.attempt));
      const results = (await pipe.exec()) ?? [];
      for (const [err] of results) if (err) throw err;
    },

    async attempt(clusterId, taskId, attempt) {
      const [state, token, sessionId] = await redis.hmget(attemptKey(clusterId, taskId, attempt), "s", "tok", "sid");
      if (!state) return undefined;
      return { state: state as AttemptRecord["state"], token: token ?? "", sessionId: sessionId ?? "" };
    },
  };
}

/** LeaseStore.complete: one completeLeases call per cluster, in one pipeline. */
async function completeLeases(redis: RedisClient, prefix: string, options: LeaseStoreOptions, leases: readonly LeaseKey[]): Promise<boolean[]> {
  if (leases.length === 0) return [];
  const pipe = batch(redis);
  const calls = batchCalls(leases, (l) => l.clusterId);
  for (const call of calls) {
    const clusterId = leases[call[0]!]!.clusterId;
    const script = new CompleteLeasesCall(
      leasesKey(clusterId),
      CONSUMER_GROUP,
      options.doneTtlSec,
      prefix + clusterKeyBase(clusterId),
      wakeChannel(options.channelPrefix, clusterId),
    );
    for (const i of call) {
      const l = leases[i]!;
      script.add(prefix + attemptKey(clusterId, l.taskId, l.attempt), l.token, attemptMember(l.taskId, l.attempt));
    }
    script.queue(pipe);
  }
  const replies = ((await pipe.exec()) ?? []).map(([err, reply]): [Error | null, unknown] => [err, err ? reply : CompleteLeasesCall.parse(reply)]);
  return perItem<boolean>(replies, calls, leases.length);
}

/** LeaseStore.expireDue: one expireLeases call per cluster, in one pipeline. */
async function expireDueLeases(
  redis: RedisClient,
  prefix: string,
  options: LeaseStoreOptions,
  limitPerCluster: number,
  reportTimeoutMs: number,
): Promise<ExpiredLease[]> {
  const clusters = await redis.smembers(clustersKey);
  if (clusters.length === 0) return [];
  const now = Date.now();
  const pipe = batch(redis);
  for (const c of clusters) {
    queueExpireLeases(pipe, {
      leasesKey: leasesKey(c),
      expiringKey: expiringKey(c),
      nowMs: now,
      limit: limitPerCluster,
      reportDeadlineMs: now + reportTimeoutMs,
      group: CONSUMER_GROUP,
      expiredTtlSec: options.doneTtlSec,
      recordPrefix: prefix + attemptPrefix(c),
      clusterKeyBase: prefix + clusterKeyBase(c),
      wakeChannel: wakeChannel(options.channelPrefix, c),
    });
  }
  const results = (await pipe.exec()) ?? [];
  const out: ExpiredLease[] = [];
  results.forEach(([err, reply], i) => {
    if (err) throw err;
    for (const row of parseExpireLeases(reply)) {
      const { taskId, attempt } = splitAttemptMember(row.member);
      out.push({ clusterId: clusters[i]!, taskId, attempt, jobId: row.jobId, sessionId: row.sessionId, brokerId: row.brokerId, timedOut: row.timedOut });
    }
  });
  return out;
}
