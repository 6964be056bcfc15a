import { sql, type Kysely } from "kysely";
import type { SpecFields } from "../spec.js";
import type { ClusterRow, RegistryDatabase } from "./database.js";
import { specFromJson, specToJson } from "./spec-json.js";

export interface ClusterRecord {
  id: string;
  teamId: string;
  slug: string;
  name: string;
  description: string;
  spec: SpecFields;
  isDefault: boolean;
  /** Runners placed by the registry on hosts (its creator asked for a runner count). */
  provisioned: boolean;
  createTime: Date;
  updateTime: Date;
}

export interface NewClusterRecord {
  id: string;
  teamId: string;
  slug: string;
  name: string;
  description: string;
  spec: SpecFields;
  isDefault: boolean;
  provisioned?: boolean;
}

function toRecord(row: ClusterRow): ClusterRecord {
  return {
    id: row.id,
    teamId: row.team_id,
    slug: row.slug,
    name: row.name,
    description: row.description,
    spec: specFromJson(row.spec),
    isDefault: row.is_default,
    provisioned: row.provisioned,
    createTime: row.create_time,
    updateTime: row.update_time,
  };
}

/**
 * Inserts the cluster; undefined when a unique key is taken: the team's slug, or (for a default
 * cluster) the team's one default, which a concurrent caller created first.
 */
export async function insertCluster(
  db: Kysely<RegistryDatabase>,
  cluster: NewClusterRecord,
): Promise<ClusterRecord | undefined> {
  const row = await db
    .insertInto("clusters")
    .values({
      id: cluster.id,
      team_id: cluster.teamId,
      slug: cluster.slug,
      name: cluster.name,
      description: cluster.description,
      spec: specToJson(cluster.spec),
      is_default: cluster.isDefault,
      provisioned: cluster.provisioned ?? false,
    })
    .onConflict((oc) => oc.doNothing())
    .returningAll()
    .executeTakeFirst();
  return row && toRecord(row);
}

export async function findClusterBySlug(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  slug: string,
): Promise<ClusterRecord | undefined> {
  const row = await db
    .selectFrom("clusters")
    .selectAll()
    .where("team_id", "=", teamId)
    .where("slug", "=", slug)
    .executeTakeFirst();
  return row && toRecord(row);
}

/** The team's cluster with this id (UUID), for callers that name a cluster by id. */
export async function findClusterById(db: Kysely<RegistryDatabase>, teamId: string, id: string): Promise<ClusterRecord | undefined> {
  const row = await db.selectFrom("clusters").selectAll().where("team_id", "=", teamId).where("id", "=", id).executeTakeFirst();
  return row && toRecord(row);
}

export async function findClustersBySlugs(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  slugs: string[],
): Promise<ClusterRecord[]> {
  if (slugs.length === 0) return [];
  const rows = await db
    .selectFrom("clusters")
    .selectAll()
    .where("team_id", "=", teamId)
    .where("slug", "in", slugs)
    .execute();
  return rows.map(toRecord);
}

export async function findDefaultCluster(
  db: Kysely<RegistryDatabase>,
  teamId: string,
): Promise<ClusterRecord | undefined> {
  const row = await db
    .selectFrom("clusters")
    .selectAll()
    .where("team_id", "=", teamId)
    .where("is_default", "=", true)
    .executeTakeFirst();
  return row && toRecord(row);
}

/** The team's oldest cluster of that name. */
export async function findClusterByName(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  name: string,
): Promise<ClusterRecord | undefined> {
  const row = await db
    .selectFrom("clusters")
    .selectAll()
    .where("team_id", "=", teamId)
    .where("name", "=", name)
    .orderBy("id")
    .limit(1)
    .executeTakeFirst();
  return row && toRecord(row);
}

export async function listClusters(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  after: string | undefined,
  limit: number,
): Promise<ClusterRecord[]> {
  let query = db.selectFrom("clusters").selectAll().where("team_id", "=", teamId);
  if (after !== undefined) query = query.where("id", ">", after);
  const rows = await query.orderBy("id").limit(limit).execute();
  return rows.map(toRecord);
}

export interface ClusterChanges {
  name?: string;
  description?: string;
  spec?: SpecFields;
  /** Only ever turned on: asking for a runner count makes a cluster provisioned. */
  provisioned?: true;
}

export async function updateCluster(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  id: string,
  changes: ClusterChanges,
): Promise<ClusterRecord | undefined> {
  const row = await db
    .updateTable("clusters")
    .set((eb) => ({
      ...(changes.name === undefined ? {} : { name: changes.name }),
      ...(changes.description === undefined ? {} : { description: changes.description }),
      ...(changes.spec === undefined ? {} : { spec: specToJson(changes.spec) }),
      ...(changes.provisioned ? { provisioned: true } : {}),
      update_time: eb.fn<Date>("now", []),
    }))
    .where("team_id", "=", teamId)
    .where("id", "=", id)
    .returningAll()
    .executeTakeFirst();
  return row && toRecord(row);
}

/**
 * Deletes a non-default cluster and the nodes recorded for it (a node list naming a cluster that
 * is gone helps nobody), in one statement; false when there was none to delete.
 */
export async function deleteCluster(db: Kysely<RegistryDatabase>, teamId: string, id: string): Promise<boolean> {
  const { rows } = await sql<{ id: string }>`
    with c as (
      delete from clusters where team_id = ${teamId} and id = ${id} and is_default = false returning id
    ),
    n as (
      delete from nodes where team_id = ${teamId} and cluster_id = ${id} and exists (select 1 from c)
    )
    select id from c`.execute(db);
  return rows.length > 0;
}
