// Gated attempts (a concurrency key or a rate limit; enqueued by stream-writes.ts into their keys'
// waiting lists): leasing them into a dispatch group's slots, keys taking turns (claimGated-1),
// and giving back leases of a session that closed before its Assign (requeueGated-1).
import { splitAttemptMember } from "./keys.js";
import { attemptMember, clusterKeyBase, leasesKey, wakeChannel } from "./keys.js";
import type { RedisClient } from "./connection.js";
import { claimGated, requeueGated } from "./script-calls.js";
import type { StreamEntry } from "./stream-entries.js";
import { slotMapOf } from "./stream-reads.js";
import type { ClaimRequest, ClaimSlots } from "./queue-store.js";
import { batch } from "./connection.js";
import { groupIndices } from "./scripts.js";

export interface GateContext {
  redis: RedisClient;
  prefix: string;
  recordTtlSec: number;
  channelPrefix: string;
}

export interface GateClaimed {
  /** Each attempt leased, with its slot (index into the slots). */
  leased: Array<{ entry: StreamEntry; slot: number }>;
  /** How long until a rate limit lets a held-back attempt start (ms; undefined: none was held back). */
  retryInMs: number | undefined;
}

export async function claimGatedAttempts(
  ctx: GateContext,
  brokerId: string,
  clusterId: string,
  bands: readonly string[],
  slots: ClaimSlots,
  expiryMs: number,
  holderCutoffMs: number,
): Promise<GateClaimed> {
  const { index, slotMap } = slotMapOf(slots.sessions);
  const reply = await claimGated(ctx.redis, {
    leasesKey: leasesKey(clusterId),
    clusterKeyBase: ctx.prefix + clusterKeyBase(clusterId),
    brokerId,
    recordTtlSec: ctx.recordTtlSec,
    expiryMs,
    holderCutoffMs,
    wakeChannel: wakeChannel(ctx.channelPrefix, clusterId),
    bands,
    tokenBase: slots.tokenBase,
    sessions: index.keys(),
    sessionCount: index.size,
    slotMap,
  });
  const leased = reply.claims.map((c) => {
    const { taskId, attempt } = splitAttemptMember(c.member);
    const entry: StreamEntry = {
      stream: "",
      id: "",
      clusterId,
      queue: bands[c.band]!,
      taskId,
      attempt,
      jobId: c.jobId,
      bytes: Buffer.from(c.task, "base64"),
      raw: c.task,
      enqueuedAtMs: c.enqueuedAtMs,
      gated: { startedAtMs: reply.nowMs },
    };
    return { entry, slot: c.slot };
  });
  return { leased, retryInMs: reply.retryAtMs > 0 ? Math.max(1, reply.retryAtMs - reply.nowMs) : undefined };
}

/** Gives back gated leases just granted to a session that closed: they wait at the head of their keys' lists again. */
export async function releaseGated(ctx: GateContext, requests: readonly ClaimRequest[]): Promise<void> {
  if (requests.length === 0) return;
  const pipe = batch(ctx.redis);
  for (const list of groupIndices(requests, (r) => r.entry.clusterId).values()) {
    const clusterId = requests[list[0]!]!.entry.clusterId;
    void requeueGated(pipe, {
      leasesKey: leasesKey(clusterId),
      clusterKeyBase: ctx.prefix + clusterKeyBase(clusterId),
      wakeChannel: wakeChannel(ctx.channelPrefix, clusterId),
      leases: list.map((i) => ({ member: attemptMember(requests[i]!.entry.taskId, requests[i]!.entry.attempt), token: requests[i]!.token })),
    });
  }
  for (const [err] of (await pipe.exec()) ?? []) if (err) throw err;
}
