// What release runners report about loading their cluster's releases: the latest report per
// runner, kept for a day (a runner that went away stops showing after that).
import type { Kysely } from "kysely";
import type { Clusters } from "./clusters.js";
import type { RegistryDatabase, StoredLoadStatus } from "./store/database.js";
import {
  deleteStaleReleaseStatus,
  listReleaseStatus,
  upsertReleaseStatus,
  type ReleaseStatusRecord,
} from "./store/release-status-repository.js";

export const RELEASE_STATUS_MAX_AGE_MS = 24 * 60 * 60 * 1000;

export interface ReleaseStatus {
  report(teamId: string, runnerId: string, clusterSlug: string, releases: StoredLoadStatus[]): Promise<void>;
  list(teamId: string, clusterSlug: string): Promise<ReleaseStatusRecord[]>;
}

export function createReleaseStatus(db: Kysely<RegistryDatabase>, clusters: Clusters): ReleaseStatus {
  return {
    async report(teamId, runnerId, clusterSlug, releases) {
      const cluster = await clusters.get(teamId, clusterSlug);
      await upsertReleaseStatus(db, { teamId, runnerId, clusterId: cluster.id, releases });
      await deleteStaleReleaseStatus(db, teamId, RELEASE_STATUS_MAX_AGE_MS);
    },
    async list(teamId, clusterSlug) {
      const cluster = await clusters.get(teamId, clusterSlug);
      return listReleaseStatus(db, teamId, cluster.id, RELEASE_STATUS_MAX_AGE_MS);
    },
  };
}
