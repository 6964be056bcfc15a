// Redis key layout (DESIGN.md §6). Every key of one cluster carries the `{<cluster id>}` hash tag,
// so a multi-stream XREADGROUP and every Lua script touch one Redis Cluster slot. ioredis adds the
// connection's keyPrefix to the keys it sends; Pub/Sub channels get it from `channel()`.
// The one key outside a cluster's tag (the cluster set) is only used by single-key commands, so it
// works on Redis Cluster too.

export const CONSUMER_GROUP = "runners";

/** Every cluster id that ever had a queue: the reaper and GetQueueStats walk it. */
export const clustersKey = "corral:clusters";

export function streamKey(clusterId: string, queue: string): string {
  return `corral:{${clusterId}}:q:${queue}`;
}

/** The set of queue names (`<name>:<version>`) of a cluster. */
export function queuesKey(clusterId: string): string {
  return `corral:{${clusterId}}:queues`;
}

/** Sorted set of `<task id>:<attempt>` scored by lease expiry (ms). */
export function leasesKey(clusterId: string): string {
  return `corral:{${clusterId}}:leases`;
}

/** Sorted set of expired leases whose expiry is being reported, scored by the report deadline. */
export function expiringKey(clusterId: string): string {
  return `corral:{${clusterId}}:expiring`;
}

/** The start of every key of a cluster; Lua scripts build per-entry keys from it. */
export function clusterKeyBase(clusterId: string): string {
  return `corral:{${clusterId}}:`;
}

/** Prefix of the per-attempt records; Lua appends `<task id>:<attempt>`. */
export function attemptPrefix(clusterId: string): string {
  return `${clusterKeyBase(clusterId)}a:`;
}

export function attemptMember(taskId: string, attempt: number): string {
  return `${taskId}:${attempt}`;
}

export function splitAttemptMember(member: string): { taskId: string; attempt: number } {
  const i = member.lastIndexOf(":");
  return { taskId: member.slice(0, i), attempt: Number(member.slice(i + 1)) };
}

export function attemptKey(clusterId: string, taskId: string, attempt: number): string {
  return attemptPrefix(clusterId) + attemptMember(taskId, attempt);
}

/**
 * A revoked job's marker (its value: the revocation time, ms), in every cluster's slot: the claim
 * scripts read it next to the entry they lease. Lua builds the same name from clusterKeyBase.
 */
export function revokedJobKey(clusterId: string, jobId: string): string {
  return `${clusterKeyBase(clusterId)}rv:j:${jobId}`;
}

export function revokedTaskKey(clusterId: string, taskId: string): string {
  return `${clusterKeyBase(clusterId)}rv:t:${taskId}`;
}

/** Pub/Sub channel announcing new entries in a cluster's queues (message: the queue name). */
export function wakeChannel(channelPrefix: string, clusterId: string): string {
  return `${channelPrefix}corral:{${clusterId}}:wake`;
}

/**
 * A job's cache (JobCacheService): its entries (a hash) and its byte count, under one hash tag per
 * team and job. Outside every cluster's tag: a job may span clusters.
 */
export function jobCacheKeys(teamId: string, jobId: string): { entries: string; bytes: string } {
  const base = `corral:jc:{${teamId}/${jobId}}:`;
  return { entries: `${base}v`, bytes: `${base}n` };
}
