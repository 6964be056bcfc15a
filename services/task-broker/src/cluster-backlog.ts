// TaskBrokerService.GetClusterBacklog: what one of the team's clusters has for runners, for
// autoscalers such as KEDA (its metrics-api trigger GETs it with the runners' key). Waiting tasks
// are counted in every stream of the cluster (priority bands and subtasks too) and in the lists of
// tasks behind concurrency keys and rate limits; running ones are the leases runners hold.
import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { GetClusterBacklogResponseSchema, type GetClusterBacklogRequest, type GetClusterBacklogResponse } from "@corral/proto";
import { NotFoundError, requireWorker } from "@corral/server-kit";
import type { QueueStat } from "./redis/queue-stats.js";
import type { ClusterResolver } from "./session-hub.js";

/** The tasks of these queue rows waiting for a runner (delivered ones are leases, counted apart). */
export function queuedOf(stats: readonly QueueStat[]): number {
  return stats.reduce((n, s) => n + s.lag, 0);
}

const UINT32_MAX = 2 ** 32 - 1;

export function createClusterBacklog(
  clusters: ClusterResolver,
  queues: { stats(clusterId?: string): Promise<QueueStat[]> },
  leases: { count(clusterId: string): Promise<number> },
) {
  return async (req: GetClusterBacklogRequest, ctx: HandlerContext): Promise<GetClusterBacklogResponse> => {
    const worker = requireWorker(ctx);
    const cluster = (await clusters.resolve(worker.teamId, [req.cluster])).get(req.cluster);
    // A runner-scoped key sees only its own cluster; another reads as missing.
    if (!cluster || (worker.clusterId !== undefined && worker.clusterId !== cluster.id)) throw new NotFoundError("cluster", req.cluster);
    const [stats, running] = await Promise.all([queues.stats(cluster.id), leases.count(cluster.id)]);
    const queued = queuedOf(stats);
    const cap = (n: number) => Math.min(n, UINT32_MAX);
    return create(GetClusterBacklogResponseSchema, { queued: cap(queued), running: cap(running), total: cap(queued + running) });
  };
}
