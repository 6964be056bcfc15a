// A session's first steps after Hello: the leases it resumes (re-bound in Redis, held here) and
// its Welcome.
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { LeaseSchema, type Hello, type Lease } from "@corral/proto";
import { attemptMember } from "../redis/keys.js";
import type { LeaseStore } from "../redis/lease-store.js";
import type { RunnerSession } from "../runner-session.js";
import type { LeaseHoldings } from "./lease-holdings.js";

export interface SessionTimes {
  brokerId: string;
  leaseDurationMs: number;
  heartbeatIntervalMs: number;
  /** Whether this broker takes task log lines (a runner sends none otherwise). */
  taskLogs: boolean;
}

/** Re-binds the leases Hello names that are still valid; answers them for Welcome. */
export async function resumeLeases(
  deps: { leases: LeaseStore; holdings: LeaseHoldings; brokerId: string; leaseDurationMs: number },
  session: RunnerSession,
  hello: Hello,
): Promise<Lease[]> {
  const expiryMs = Date.now() + deps.leaseDurationMs;
  const wanted = hello.resumeLeases.map((l) => ({ member: attemptMember(l.taskId, l.attempt), token: l.token }));
  const resumed = await deps.leases.resume(session.cluster.id, session.id, deps.brokerId, wanted, expiryMs);
  const out: Lease[] = [];
  for (const l of hello.resumeLeases) {
    const member = attemptMember(l.taskId, l.attempt);
    if (!resumed.has(member) || session.leases.has(member)) continue;
    const { jobId, queue } = resumed.get(member)!;
    deps.holdings.hold(session, member, { taskId: l.taskId, attempt: l.attempt, token: l.token, jobId, queue, sinceMs: Date.now(), expireMs: expiryMs });
    out.push(create(LeaseSchema, { taskId: l.taskId, attempt: l.attempt, token: l.token, expireTime: timestampFromMs(expiryMs) }));
  }
  return out;
}

/** Sends Welcome with the session's settings and the leases it resumed. */
export function welcome(session: RunnerSession, resumed: Lease[], times: SessionTimes): void {
  session.send({
    case: "welcome",
    value: {
      sessionId: session.id,
      leaseDuration: durationFromMs(times.leaseDurationMs),
      heartbeatInterval: durationFromMs(times.heartbeatIntervalMs),
      clusterId: session.cluster.id,
      clusterSlug: session.cluster.slug,
      resumed,
      brokerId: times.brokerId,
      batches: true,
      progress: true,
      taskLogs: times.taskLogs,
    },
  });
}
