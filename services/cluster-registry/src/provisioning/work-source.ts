// Where the reconciler learns whether a cluster has work: the broker's internal
// DispatchService.GetQueueStats, asked once per pass for every cluster. Undelivered entries (lag)
// wake a stopped cluster; undelivered or leased ones (pending, and the cluster's lease count, which
// also holds tasks behind concurrency keys) keep a running one from idling, so a long task holding
// its lease is never mistaken for idle (keda#1615).
import { DispatchService } from "@corral/proto";
import { createServiceClient } from "@corral/server-kit";

export interface ClusterWork {
  /** Tasks waiting in its queues for a runner. */
  queued: number;
  /** Tasks delivered to a runner and not finished. */
  running: number;
}

/** Work per cluster id; a cluster missing from the map has none. */
export type WorkSource = () => Promise<Map<string, ClusterWork>>;

export function createBrokerWorkSource(options: { brokerUrl: string; serviceKey: string; timeoutMs?: number }): WorkSource {
  const client = createServiceClient(DispatchService, { baseUrl: options.brokerUrl, apiKey: options.serviceKey, timeoutMs: options.timeoutMs ?? 5_000 });
  return async () => {
    const res = await client.getQueueStats({ clusterId: "" });
    const work = new Map<string, ClusterWork>();
    const of = (clusterId: string) => {
      let w = work.get(clusterId);
      if (!w) work.set(clusterId, (w = { queued: 0, running: 0 }));
      return w;
    };
    for (const q of res.queues) {
      const w = of(q.clusterId);
      w.queued += Number(q.lag);
      w.running += Number(q.pending);
    }
    // Leases count the tasks runners hold whatever their queue; a task behind a concurrency key is
    // in no stream's pending list. A broker from before answers none: pending stands alone.
    for (const l of res.leases) {
      const w = of(l.clusterId);
      w.running = Math.max(w.running, Number(l.count));
    }
    return work;
  };
}
