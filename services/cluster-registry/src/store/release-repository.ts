// SQL for releases and their deployments on clusters.
import { sql, type Kysely } from "kysely";
import type { DeploymentRow, RegistryDatabase, ReleaseRow, StoredManifest } from "./database.js";

export interface ReleaseRecord {
  id: string;
  teamId: string;
  name: string;
  version: string;
  digest: string;
  sizeBytes: number;
  blobId: string;
  manifest: StoredManifest;
  createTime: Date;
  /** Slugs of the clusters it is deployed to. */
  deployedTo: string[];
}

export interface NewReleaseRecord {
  id: string;
  teamId: string;
  name: string;
  version: string;
  versionKey: string;
  digest: string;
  sizeBytes: number;
  blobId: string;
  manifest: StoredManifest;
}

export interface DeploymentRecord {
  clusterId: string;
  clusterSlug: string;
  release: ReleaseRecord;
  deployTime: Date;
}

/** Where a page of releases continues: after this name and version. */
export interface ReleaseCursor {
  name: string;
  versionKey: string;
  version: string;
}

function toRecord(row: ReleaseRow, deployedTo: string[] = []): ReleaseRecord {
  return {
    id: row.id,
    teamId: row.team_id,
    name: row.name,
    version: row.version,
    digest: row.digest,
    sizeBytes: Number(row.size_bytes),
    blobId: row.blob_id,
    manifest: row.manifest,
    createTime: row.create_time,
    deployedTo,
  };
}

/** The cluster slugs each release is deployed to. */
async function deployedTo(db: Kysely<RegistryDatabase>, releaseIds: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (releaseIds.length === 0) return out;
  const rows = await db
    .selectFrom("deployments")
    .innerJoin("clusters", "clusters.id", "deployments.cluster_id")
    .select(["deployments.release_id", "clusters.slug"])
    .where("deployments.release_id", "in", releaseIds)
    .orderBy("clusters.slug")
    .execute();
  for (const r of rows) {
    const list = out.get(r.release_id) ?? [];
    list.push(r.slug);
    out.set(r.release_id, list);
  }
  return out;
}

async function withDeployments(db: Kysely<RegistryDatabase>, rows: ReleaseRow[]): Promise<ReleaseRecord[]> {
  const slugs = await deployedTo(db, rows.map((r) => r.id));
  return rows.map((r) => toRecord(r, slugs.get(r.id)));
}

/** Inserts the release; undefined when the team has this name and version already. */
export async function insertRelease(db: Kysely<RegistryDatabase>, r: NewReleaseRecord): Promise<ReleaseRecord | undefined> {
  const row = await db
    .insertInto("releases")
    .values({
      id: r.id,
      team_id: r.teamId,
      name: r.name,
      version: r.version,
      version_key: r.versionKey,
      digest: r.digest,
      size_bytes: r.sizeBytes,
      blob_id: r.blobId,
      manifest: JSON.stringify(r.manifest),
    })
    .onConflict((oc) => oc.columns(["team_id", "name", "version"]).doNothing())
    .returningAll()
    .executeTakeFirst();
  return row && toRecord(row);
}

export async function findRelease(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  name: string,
  version: string,
): Promise<ReleaseRecord | undefined> {
  const row = await db
    .selectFrom("releases")
    .selectAll()
    .where("team_id", "=", teamId)
    .where("name", "=", name)
    .where("version", "=", version)
    .executeTakeFirst();
  return row && (await withDeployments(db, [row]))[0];
}

/** The name's highest version by semver precedence. */
export async function findNewestRelease(db: Kysely<RegistryDatabase>, teamId: string, name: string): Promise<ReleaseRecord | undefined> {
  const row = await db
    .selectFrom("releases")
    .selectAll()
    .where("team_id", "=", teamId)
    .where("name", "=", name)
    .orderBy("version_key", "desc")
    .orderBy("version", "desc")
    .limit(1)
    .executeTakeFirst();
  return row && (await withDeployments(db, [row]))[0];
}

/** Releases by name, newest version first within a name, after `cursor`. */
export async function listReleases(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  name: string | undefined,
  cursor: ReleaseCursor | undefined,
  limit: number,
): Promise<Array<ReleaseRecord & { versionKey: string }>> {
  let query = db.selectFrom("releases").selectAll().where("team_id", "=", teamId);
  if (name !== undefined) query = query.where("name", "=", name);
  if (cursor) {
    query = query.where((eb) =>
      eb.or([
        eb("name", ">", cursor.name),
        eb.and([eb("name", "=", cursor.name), eb(eb.refTuple("version_key", "version"), "<", eb.tuple(cursor.versionKey, cursor.version))]),
      ]),
    );
  }
  const rows = await query.orderBy("name").orderBy("version_key", "desc").orderBy("version", "desc").limit(limit).execute();
  const records = await withDeployments(db, rows);
  return records.map((r, i) => ({ ...r, versionKey: rows[i]!.version_key }));
}

/** Deletes the release; false when there was none. A deployed release fails on its foreign key (23503). */
export async function deleteRelease(db: Kysely<RegistryDatabase>, teamId: string, id: string): Promise<boolean> {
  const result = await db.deleteFrom("releases").where("team_id", "=", teamId).where("id", "=", id).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/**
 * Puts the release on the cluster under its name; returns the release id it replaced (undefined
 * when the name was not deployed there, or was deployed at this very release: then nothing changes).
 */
export async function upsertDeployment(
  db: Kysely<RegistryDatabase>,
  d: { teamId: string; clusterId: string; name: string; releaseId: string },
): Promise<{ changed: boolean; previousReleaseId: string | undefined }> {
  return db.transaction().execute(async (tx) => {
    const previous = await tx
      .selectFrom("deployments")
      .select("release_id")
      .where("cluster_id", "=", d.clusterId)
      .where("name", "=", d.name)
      .forUpdate()
      .executeTakeFirst();
    if (previous?.release_id === d.releaseId) return { changed: false, previousReleaseId: undefined };
    await tx
      .insertInto("deployments")
      .values({ team_id: d.teamId, cluster_id: d.clusterId, name: d.name, release_id: d.releaseId })
      .onConflict((oc) =>
        oc.columns(["cluster_id", "name"]).doUpdateSet({ release_id: d.releaseId, deploy_time: sql<Date>`now()` }),
      )
      .execute();
    return { changed: true, previousReleaseId: previous?.release_id };
  });
}

export async function findReleaseById(db: Kysely<RegistryDatabase>, id: string): Promise<ReleaseRecord | undefined> {
  const row = await db.selectFrom("releases").selectAll().where("id", "=", id).executeTakeFirst();
  return row && toRecord(row);
}

/** Removes the name's deployment from the cluster; false when there was none. */
export async function deleteDeployment(db: Kysely<RegistryDatabase>, clusterId: string, name: string): Promise<boolean> {
  const result = await db.deleteFrom("deployments").where("cluster_id", "=", clusterId).where("name", "=", name).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/** The deployments of the team's clusters (of `clusterIds` when given), by cluster slug then name. */
export async function listDeployments(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  clusterIds?: string[],
): Promise<DeploymentRecord[]> {
  if (clusterIds?.length === 0) return [];
  let query = db
    .selectFrom("deployments")
    .innerJoin("clusters", "clusters.id", "deployments.cluster_id")
    .innerJoin("releases", "releases.id", "deployments.release_id")
    .selectAll("releases")
    .select(["deployments.cluster_id as d_cluster_id", "clusters.slug as d_cluster_slug", "deployments.deploy_time as d_deploy_time"])
    .where("deployments.team_id", "=", teamId);
  if (clusterIds) query = query.where("deployments.cluster_id", "in", clusterIds);
  const rows = await query.orderBy("clusters.slug").orderBy("releases.name").execute();
  const releases = await withDeployments(db, rows);
  return rows.map((r, i) => ({
    clusterId: r.d_cluster_id,
    clusterSlug: r.d_cluster_slug,
    release: releases[i]!,
    deployTime: r.d_deploy_time,
  }));
}

export type { DeploymentRow };
