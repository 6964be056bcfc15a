// Deployments: which release versions each cluster runs (one version per release name), and the
// watch release runners follow. A watch sends the cluster's whole set, then again after every
// change; it is woken by the notifier (LISTEN/NOTIFY, no polling) and keeps only "something
// changed" between reads, so a slow reader gets the latest set, never a backlog.
import type { Kysely } from "kysely";
import { NotFoundError } from "@corral/server-kit";
import type { Clusters } from "./clusters.js";
import type { DeploymentNotifier } from "./deployment-notifier.js";
import type { Releases } from "./releases.js";
import type { ClusterRecord } from "./store/cluster-repository.js";
import type { RegistryDatabase } from "./store/database.js";
import {
  deleteDeployment,
  findReleaseById,
  listDeployments,
  upsertDeployment,
  type DeploymentRecord,
} from "./store/release-repository.js";

export interface DeploymentSet {
  cluster: ClusterRecord;
  deployments: DeploymentRecord[];
}

export interface Deployments {
  /** Puts the release version on the cluster (empty slug: the default); returns what it replaced. */
  deploy(
    teamId: string,
    name: string,
    version: string,
    clusterSlug: string,
  ): Promise<{ deployment: DeploymentRecord; replacedVersion: string }>;
  undeploy(teamId: string, name: string, clusterSlug: string): Promise<void>;
  /** Empty slug: every cluster of the team. */
  list(teamId: string, clusterSlug: string): Promise<DeploymentRecord[]>;
  /** The deployments of each cluster, by cluster id (for Cluster.deployments). */
  ofClusters(teamId: string, clusterIds: string[]): Promise<Map<string, DeploymentRecord[]>>;
  /** The cluster's set now, then after every change, until `signal` aborts or `drain` is called. */
  watch(teamId: string, clusterSlug: string, signal: AbortSignal): AsyncGenerator<DeploymentSet>;
  /** Ends every watch cleanly (the server is going away); later watches end after their first set. */
  drain(): void;
}

/** What a set looks like to a runner: a new message only when this changes. */
function fingerprint(set: DeploymentRecord[]): string {
  return JSON.stringify(set.map((d) => [d.release.name, d.release.version, d.release.digest, d.deployTime.getTime()]));
}

export function createDeployments(
  db: Kysely<RegistryDatabase>,
  clusters: Clusters,
  releases: Releases,
  notifier: DeploymentNotifier,
): Deployments {
  let draining = false;
  const wakeOnDrain = new Set<() => void>();

  async function clusterOf(teamId: string, slug: string): Promise<ClusterRecord> {
    return clusters.get(teamId, slug);
  }

  return {
    async deploy(teamId, name, version, clusterSlug) {
      const release = await releases.get(teamId, name, version);
      const cluster = await clusterOf(teamId, clusterSlug);
      const { changed, previousReleaseId } = await upsertDeployment(db, {
        teamId,
        clusterId: cluster.id,
        name: release.name,
        releaseId: release.id,
      });
      if (changed) notifier.changed(cluster.id);
      const previous = previousReleaseId === undefined ? undefined : await findReleaseById(db, previousReleaseId);
      const now = await listDeployments(db, teamId, [cluster.id]);
      // A concurrent deploy may have replaced it already: report what this call did.
      const deployment = now.find((d) => d.release.id === release.id) ?? {
        clusterId: cluster.id,
        clusterSlug: cluster.slug,
        release,
        deployTime: new Date(),
      };
      return { deployment, replacedVersion: previous?.version ?? "" };
    },

    async undeploy(teamId, name, clusterSlug) {
      const cluster = await clusterOf(teamId, clusterSlug);
      if (!(await deleteDeployment(db, cluster.id, name))) throw new NotFoundError("deployment", `${name} on ${cluster.slug}`);
      notifier.changed(cluster.id);
    },

    async list(teamId, clusterSlug) {
      if (clusterSlug === "") return listDeployments(db, teamId);
      const cluster = await clusterOf(teamId, clusterSlug);
      return listDeployments(db, teamId, [cluster.id]);
    },

    async ofClusters(teamId, clusterIds) {
      const out = new Map<string, DeploymentRecord[]>();
      for (const d of await listDeployments(db, teamId, clusterIds)) {
        const list = out.get(d.clusterId) ?? [];
        list.push(d);
        out.set(d.clusterId, list);
      }
      return out;
    },

    async *watch(teamId, clusterSlug, signal) {
      const cluster = await clusterOf(teamId, clusterSlug);
      let dirty = true;
      let wake: (() => void) | undefined;
      const poke = () => {
        dirty = true;
        wake?.();
      };
      // Subscribe before the first read, so no change slips between the read and the subscription.
      const unsubscribe = notifier.subscribe(cluster.id, poke);
      signal.addEventListener("abort", poke);
      wakeOnDrain.add(poke);
      let last: string | undefined;
      try {
        while (!signal.aborted) {
          if (!dirty) {
            if (draining) return;
            await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
            continue;
          }
          dirty = false;
          const deployments = await listDeployments(db, teamId, [cluster.id]);
          const print = fingerprint(deployments);
          if (print !== last) {
            last = print;
            yield { cluster, deployments };
          }
        }
      } finally {
        wakeOnDrain.delete(poke);
        signal.removeEventListener("abort", poke);
        unsubscribe();
      }
    },

    drain() {
      draining = true;
      for (const poke of [...wakeOnDrain]) poke();
    },
  };
}
