// Stopping and starting provisioned clusters by hand, and reading their status for Cluster messages.
import { sql, type Kysely } from "kysely";
import { FailedPreconditionError } from "@corral/server-kit";
import type { ClusterRecord } from "../store/cluster-repository.js";
import type { ClusterProvisioningRow, RegistryDatabase, StoredClusterState } from "../store/database.js";

export interface Provisioning {
  /** Status rows of the clusters that have one (provisioned clusters of teams with hosts). */
  statusOf(clusterIds: string[]): Promise<Map<string, ClusterProvisioningRow>>;
  stop(cluster: ClusterRecord): Promise<void>;
  start(cluster: ClusterRecord): Promise<void>;
  /**
   * A provisioned cluster was created or its spec changed: it reads PENDING (with the runner count
   * now asked) until the next pass, run at once, so a waiter never takes the old READY for the new
   * spec. A stopped cluster stays stopped.
   */
  specChanged(cluster: ClusterRecord): Promise<void>;
}

export function createProvisioning(db: Kysely<RegistryDatabase>, poke: () => void): Provisioning {
  function requireProvisioned(cluster: ClusterRecord): void {
    if (!cluster.provisioned || cluster.spec.runnerCount === undefined) {
      throw new FailedPreconditionError(`cluster ${JSON.stringify(cluster.slug)} was created without a runner_count: its runners are started by hand`);
    }
  }

  async function setStopped(cluster: ClusterRecord, stopped: boolean): Promise<void> {
    requireProvisioned(cluster);
    await db
      .insertInto("cluster_provisioning")
      .values({ cluster_id: cluster.id, team_id: cluster.teamId, stopped, stop_reason: stopped ? "manual" : "", last_work_time: new Date() })
      .onConflict((oc) =>
        oc.column("cluster_id").doUpdateSet({ stopped, stop_reason: stopped ? "manual" : "", last_work_time: new Date(), ...(stopped ? { state: "stopping" } : { state: "pending" }) }),
      )
      .execute();
    poke();
  }

  return {
    async specChanged(cluster) {
      if (!cluster.provisioned || cluster.spec.runnerCount === undefined) return;
      const desired = cluster.spec.runnerCount;
      await db
        .insertInto("cluster_provisioning")
        .values({ cluster_id: cluster.id, team_id: cluster.teamId, state: "pending", desired_runners: desired })
        .onConflict((oc) =>
          oc.column("cluster_id").doUpdateSet({
            state: sql<StoredClusterState>`case when cluster_provisioning.stopped then cluster_provisioning.state else 'pending' end`,
            state_reason: sql<string>`case when cluster_provisioning.stopped then cluster_provisioning.state_reason else '' end`,
            desired_runners: sql<number>`case when cluster_provisioning.stopped then 0 else ${desired} end`,
          }),
        )
        .execute();
      poke();
    },
    async statusOf(clusterIds) {
      if (clusterIds.length === 0) return new Map();
      const rows = await db.selectFrom("cluster_provisioning").selectAll().where("cluster_id", "in", clusterIds).execute();
      return new Map(rows.map((r) => [r.cluster_id, r]));
    },
    stop: (cluster) => setStopped(cluster, true),
    start: (cluster) => setStopped(cluster, false),
  };
}
