// Leases in Redis: extend (heartbeat), resume (reconnect), complete (result durable), expire
// (reaper), and reading an attempt's record to answer a late result.
import {
  attemptKey,
  attemptMember,
  attemptPrefix,
  clustersKey,
  CONSUMER_GROUP,
  expiringKey,
  leasesKey,
  splitAttemptMember,
} from "./keys.js";
import { batch, type RedisClient } from "./connection.js";
import { batchCalls, defineScripts, perItem, scripts } from "./scripts.js";

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
}

export interface AttemptRecord {
  state: "queued" | "leased" | "done" | "expired" | "revoked";
  token: string;
  sessionId: string;
}

export interface LeaseStoreOptions {
  /** How long a done or expired attempt record is kept, seconds (answers late results). */
  doneTtlSec: number;
}

export interface LeaseStore {
  /** Extends the session's leases of one cluster; returns the members it no longer holds. */
  extend(clusterId: string, sessionId: string, members: readonly string[], expiryMs: number): Promise<string[]>;
  /** Re-binds still-valid leases to `sessionId`; returns member → job id of those resumed. */
  resume(
    clusterId: string,
    sessionId: string,
    brokerId: string,
    leases: ReadonlyArray<{ member: string; token: string }>,
    expiryMs: number,
  ): Promise<Map<string, string>>;
  /** Releases leases whose results are durable; true per lease when the token still matched. */
  complete(leases: readonly LeaseKey[]): Promise<boolean[]>;
  /** Expires due leases of every cluster; each is returned to exactly one caller. */
  expireDue(limitPerCluster: number, reportTimeoutMs: number): Promise<ExpiredLease[]>;
  /** The expiry of these leases is now recorded by job-service. */
  expiryReported(leases: ReadonlyArray<{ clusterId: string; taskId: string; attempt: number }>): Promise<void>;
  attempt(clusterId: string, taskId: string, attempt: number): Promise<AttemptRecord | undefined>;
}

export function createLeaseStore(redis: RedisClient, options: LeaseStoreOptions): LeaseStore {
  defineScripts(redis);
  // The batch scripts take their per-item keys in ARGV, where ioredis adds no prefix.
  const prefix = redis.options.keyPrefix ?? "";
  return {
    async extend(clusterId, sessionId, members, expiryMs) {
      if (members.length === 0) return [];
      const lost = (await scripts.extendLeases(
        redis,
        [leasesKey(clusterId), attemptPrefix(clusterId)],
        [sessionId, expiryMs, Date.now(), ...members],
      )) as string[];
      return lost;
    },

    async resume(clusterId, sessionId, brokerId, leases, expiryMs) {
      const out = new Map<string, string>();
      if (leases.length === 0) return out;
      const args: Array<string | number> = [sessionId, brokerId, expiryMs, Date.now()];
      for (const l of leases) args.push(l.member, l.token);
      const flat = (await scripts.resumeLeases(redis, [leasesKey(clusterId), attemptPrefix(clusterId)], args)) as string[];
      for (let i = 0; i + 1 < flat.length; i += 2) out.set(flat[i]!, flat[i + 1]!);
      return out;
    },

    async complete(leases) {
      if (leases.length === 0) return [];
      const pipe = batch(redis);
      const calls = batchCalls(leases, (l) => l.clusterId);
      for (const call of calls) {
        const clusterId = leases[call[0]!]!.clusterId;
        const args: Array<string | number> = [CONSUMER_GROUP, options.doneTtlSec];
        for (const i of call) {
          const l = leases[i]!;
          args.push(prefix + attemptKey(clusterId, l.taskId, l.attempt), l.token, attemptMember(l.taskId, l.attempt));
        }
        scripts.completeLeases(pipe, [leasesKey(clusterId)], args);
      }
      return perItem<number>((await pipe.exec()) ?? [], calls, leases.length).map((v) => v === 1);
    },

    async expireDue(limitPerCluster, reportTimeoutMs) {
      const clusters = await redis.smembers(clustersKey);
      if (clusters.length === 0) return [];
      const now = Date.now();
      const pipe = batch(redis);
      for (const c of clusters) {
        scripts.expireLeases(
          pipe,
          [leasesKey(c), expiringKey(c), attemptPrefix(c)],
          [now, limitPerCluster, now + reportTimeoutMs, CONSUMER_GROUP, options.doneTtlSec],
        );
      }
      const results = (await pipe.exec()) ?? [];
      const out: ExpiredLease[] = [];
      results.forEach(([err, flat], i) => {
        if (err) throw err;
        const list = flat as string[];
        for (let j = 0; j + 3 < list.length; j += 4) {
          const { taskId, attempt } = splitAttemptMember(list[j]!);
          out.push({
            clusterId: clusters[i]!,
            taskId,
            attempt,
            jobId: list[j + 1]!,
            sessionId: list[j + 2]!,
            brokerId: list[j + 3]!,
          });
        }
      });
      return out;
    },

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
