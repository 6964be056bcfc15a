// SQL for what release runners report about loading their releases: the latest report per runner.
import { sql, type Kysely } from "kysely";
import type { RegistryDatabase, StoredLoadStatus } from "./database.js";

export interface ReleaseStatusRecord {
  runnerId: string;
  clusterId: string;
  clusterSlug: string;
  releases: StoredLoadStatus[];
  reportTime: Date;
}

/** Replaces the runner's report with this one, stamped with the database's clock. */
export async function upsertReleaseStatus(
  db: Kysely<RegistryDatabase>,
  r: { teamId: string; runnerId: string; clusterId: string; releases: StoredLoadStatus[] },
): Promise<void> {
  const releases = JSON.stringify(r.releases);
  await db
    .insertInto("release_status")
    .values({ team_id: r.teamId, runner_id: r.runnerId, cluster_id: r.clusterId, releases })
    .onConflict((oc) =>
      oc.columns(["team_id", "runner_id"]).doUpdateSet({ cluster_id: r.clusterId, releases, report_time: sql<Date>`now()` }),
    )
    .execute();
}

/** The reports of the cluster's runners newer than `maxAgeMs`, by runner id. */
export async function listReleaseStatus(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  clusterId: string,
  maxAgeMs: number,
): Promise<ReleaseStatusRecord[]> {
  const rows = await db
    .selectFrom("release_status")
    .innerJoin("clusters", "clusters.id", "release_status.cluster_id")
    .select(["release_status.runner_id", "release_status.cluster_id", "clusters.slug", "release_status.releases", "release_status.report_time"])
    .where("release_status.team_id", "=", teamId)
    .where("release_status.cluster_id", "=", clusterId)
    .where("release_status.report_time", ">", sql<Date>`now() - make_interval(secs => ${maxAgeMs / 1000})`)
    .orderBy("release_status.runner_id")
    .execute();
  return rows.map((r) => ({
    runnerId: r.runner_id,
    clusterId: r.cluster_id,
    clusterSlug: r.slug,
    releases: r.releases,
    reportTime: r.report_time,
  }));
}

/** Deletes the team's reports older than `maxAgeMs` (runners that went away). */
export async function deleteStaleReleaseStatus(db: Kysely<RegistryDatabase>, teamId: string, maxAgeMs: number): Promise<void> {
  await db
    .deleteFrom("release_status")
    .where("team_id", "=", teamId)
    .where("report_time", "<", sql<Date>`now() - make_interval(secs => ${maxAgeMs / 1000})`)
    .execute();
}
