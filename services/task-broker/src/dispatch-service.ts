// DispatchService (internal, service key only): Enqueue from job-service, Revoke, and the
// operator views GetQueueStats and ListSessions. Thin: translate, call the stores, map.
import { create, fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  ClusterLeasesSchema,
  QueueStatsSchema,
  SessionSchema,
  TaskIdentifierSchema,
  type DispatchService,
  type Session,
} from "@corral/proto";
import { decodePageToken, InvalidArgumentError, pageSize, requireService, toPage } from "@corral/server-kit";
import type { LeaseStore } from "./redis/lease-store.js";
import type { QueueStore } from "./redis/queue-store.js";
import { sumBands, type QueueStat } from "./redis/queue-stats.js";
import type { RunnerSession } from "./runner-session.js";
import { baseQueue, maxQueuesPerSession, parseVersion, readableQueues, splitQueueName } from "./task-identifier.js";

export interface DispatchServiceDeps {
  queues: QueueStore;
  leases: Pick<LeaseStore, "count">;
  /** Asks every replica (this one included); answers that arrive within the timeout. */
  fanout<T>(body: BusRequest, timeoutMs: number): Promise<T[]>;
  brokerId: string;
  /** How long a revoked job or task id is remembered (its stream entries dropped), seconds. */
  revokedTtlSec: number;
  /** How long to wait for other replicas' answers. */
  fanoutTimeoutMs: number;
}

export type BusRequest =
  | { type: "revoke"; teamId: string; jobId: string; taskIds: string[]; reason: string }
  | { type: "sessions"; clusterId: string; teamId: string };

export function sessionToProto(s: RunnerSession, brokerId: string): Session {
  return create(SessionSchema, {
    sessionId: s.id,
    runnerId: s.runnerId,
    teamId: s.teamId,
    clusterId: s.cluster.id,
    clusterSlug: s.cluster.slug,
    identifiers: s.identifiers,
    slots: s.slots,
    credit: s.credit,
    leases: s.leases.size,
    brokerId,
    connectTime: timestampFromDate(s.connectTime),
    draining: s.state !== "active",
  });
}

export function sessionToJson(s: RunnerSession, brokerId: string): JsonValue {
  return toJson(SessionSchema, sessionToProto(s, brokerId));
}

/**
 * Consumers of each queue (`<clusterId>\n<queue>`): the runner sessions (on the replicas that
 * answered) that read it.
 */
function readersByQueue(sessions: readonly Session[]): Map<string, number> {
  const readers = new Map<string, number>();
  for (const s of sessions) {
    // Sessions passed the same bound at Hello.
    for (const q of readableQueues(s.identifiers, maxQueuesPerSession)) {
      const key = `${s.clusterId}\n${q}`;
      readers.set(key, (readers.get(key) ?? 0) + 1);
    }
  }
  return readers;
}

/** One row of GetQueueStats. */
function queueStatsRow(s: QueueStat, readers: ReadonlyMap<string, number>) {
  const { name, version } = splitQueueName(s.queue);
  return create(QueueStatsSchema, {
    clusterId: s.clusterId,
    identifier: create(TaskIdentifierSchema, { name, version }),
    length: BigInt(s.length),
    pending: BigInt(s.pending),
    oldestAgeMs: BigInt(s.oldestAgeMs),
    // A priority band or a gated queue is read by the sessions reading its queue.
    consumers: readers.get(`${s.clusterId}\n${baseQueue(s.queue)}`) ?? 0,
    lag: BigInt(s.lag),
    gated: s.gated ?? false,
  });
}

export function createDispatchService(deps: DispatchServiceDeps): Partial<ServiceImpl<typeof DispatchService>> {
  return {
    async enqueue(req, ctx) {
      requireService(ctx);
      req.tasks.forEach((t, i) => {
        if (!t.identifier) throw new InvalidArgumentError(`tasks[${i}].identifier`, "required");
        parseVersion(t.identifier.version, `tasks[${i}].identifier.version`);
      });
      const { enqueued, duplicates } = await deps.queues.enqueue(req.tasks);
      return { enqueuedCount: enqueued, duplicateCount: duplicates };
    },

    async revoke(req, ctx) {
      requireService(ctx);
      await deps.queues.markRevoked(req.jobId, req.taskIds, deps.revokedTtlSec);
      // Queued entries go now; the marker still drops any the request did not name when claimed.
      await deps.queues.drop(req.queued);
      const body: BusRequest = {
        type: "revoke",
        teamId: req.teamId,
        jobId: req.jobId,
        taskIds: req.taskIds,
        reason: req.reason,
      };
      const counts = await deps.fanout<number>(body, deps.fanoutTimeoutMs);
      return { canceledLeases: counts.reduce((a, b) => a + Number(b), 0) };
    },

    async getQueueStats(req, ctx) {
      requireService(ctx);
      const [stats, sessions] = await Promise.all([
        deps.queues.stats(req.clusterId || undefined),
        deps.fanout<JsonValue[]>({ type: "sessions", clusterId: req.clusterId, teamId: "" }, deps.fanoutTimeoutMs),
      ]);
      const readers = readersByQueue(sessions.flat().map((json) => fromJson(SessionSchema, json)));
      const clusters = [...new Set(req.clusterId ? [req.clusterId] : stats.map((s) => s.clusterId))];
      const counts = await Promise.all(clusters.map((c) => deps.leases.count(c)));
      return {
        queues: sumBands(stats).map((s) => queueStatsRow(s, readers)),
        leases: clusters.map((clusterId, i) => create(ClusterLeasesSchema, { clusterId, count: BigInt(counts[i]!) })),
      };
    },

    async listSessions(req, ctx) {
      requireService(ctx);
      const body: BusRequest = { type: "sessions", clusterId: req.clusterId, teamId: req.teamId };
      const answers = await deps.fanout<JsonValue[]>(body, deps.fanoutTimeoutMs);
      const sessions = answers.flat().map((j) => fromJson(SessionSchema, j));
      sessions.sort((a, b) => (a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0));
      if (req.pageSize === 0 && req.pageToken === "") return { sessions };
      // The token holds the last session id of the previous page: sessions that came and went
      // meanwhile neither shift nor repeat the ones after it.
      const after = decodePageToken(req.pageToken) ?? "";
      const limit = pageSize(req.pageSize);
      const page = toPage(
        sessions.filter((s) => s.sessionId > after).slice(0, limit + 1),
        limit,
        (s) => s.sessionId,
      );
      return { sessions: page.items, nextPageToken: page.nextPageToken };
    },
  };
}
