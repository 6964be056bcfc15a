// What job-service needs from the rest of Corral, injected so the domain runs without the network.
import type { TaskEnvelope } from "@corral/proto";

export interface ResolvedCluster {
  id: string;
  slug: string;
}

/**
 * Resolves a team's cluster slugs (the empty slug is the team's default cluster). The real one calls
 * the registry's internal `ClusterService.ResolveClusters`. Unknown slugs throw `NotFoundError("cluster", slug)`.
 */
export interface ClusterResolver {
  resolve(teamId: string, slugs: string[]): Promise<Map<string, ResolvedCluster>>;
}

/** A task attempt handed to the broker and still queued there. */
export interface QueuedAttempt {
  clusterId: string;
  taskId: string;
  attempt: number;
}

/** Hands ready tasks to the broker and revokes leases; the real one calls the broker's `DispatchService`. */
export interface Dispatcher {
  enqueue(tasks: TaskEnvelope[]): Promise<void>;
  /**
   * An empty `taskIds` means every task of the job. `queued`: attempts whose stream entries the
   * broker deletes now.
   */
  revoke(teamId: string, jobId: string, taskIds: string[], reason: string, queued?: QueuedAttempt[]): Promise<void>;
}
