import { sql, type Kysely } from "kysely";
import type { SpecFields } from "../spec.js";
import type { ConfigurationRow, RegistryDatabase } from "./database.js";
import { specFromJson, specToJson } from "./spec-json.js";

export interface ConfigurationRecord {
  name: string;
  description: string;
  spec: SpecFields;
  /** Built-in configurations belong to no team. */
  builtin: boolean;
  createTime: Date;
}

function toRecord(row: ConfigurationRow): ConfigurationRecord {
  return {
    name: row.name,
    description: row.description,
    spec: specFromJson(row.spec),
    builtin: row.team_id === null,
    createTime: row.create_time,
  };
}

/** Inserts the team's configuration; undefined when the team already has one of that name. */
export async function insertConfiguration(
  db: Kysely<RegistryDatabase>,
  configuration: { id: string; teamId: string; name: string; description: string; spec: SpecFields },
): Promise<ConfigurationRecord | undefined> {
  const row = await db
    .insertInto("configurations")
    .values({
      id: configuration.id,
      team_id: configuration.teamId,
      name: configuration.name,
      description: configuration.description,
      spec: specToJson(configuration.spec),
    })
    .onConflict((oc) => oc.doNothing())
    .returningAll()
    .executeTakeFirst();
  return row && toRecord(row);
}

/** The team's configuration of that name, or the built-in one. */
export async function findConfiguration(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  name: string,
): Promise<ConfigurationRecord | undefined> {
  const row = await db
    .selectFrom("configurations")
    .selectAll()
    .where((eb) => eb.or([eb("team_id", "=", teamId), eb("team_id", "is", null)]))
    .where("name", "=", name)
    .executeTakeFirst();
  return row && toRecord(row);
}

/** Built-in and team configurations together, by name (names never collide: `corral/` is reserved). */
export async function listConfigurations(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  after: string | undefined,
  limit: number,
): Promise<ConfigurationRecord[]> {
  let query = db
    .selectFrom("configurations")
    .selectAll()
    .where((eb) => eb.or([eb("team_id", "=", teamId), eb("team_id", "is", null)]));
  if (after !== undefined) query = query.where("name", ">", after);
  const rows = await query.orderBy("name").limit(limit).execute();
  return rows.map(toRecord);
}

/** Deletes the team's own configuration; false when it has none of that name. */
/**
 * Deletes the team's configuration unless a cluster of the team was made from it (its spec
 * records the name): "deleted", "missing", or "in use" with up to ten of those clusters' slugs.
 * One statement, so a check and a delete cannot interleave with another replica's delete.
 */
export async function deleteConfiguration(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  name: string,
): Promise<{ outcome: "deleted" | "missing" } | { outcome: "in use"; clusters: string[] }> {
  const { rows } = await sql<{ deleted: boolean; users: string[] | null; found: boolean }>`
    with users as (
      select slug from clusters where team_id = ${teamId} and spec->>'configuration' = ${name} order by slug limit 10
    ),
    d as (
      delete from configurations where team_id = ${teamId} and name = ${name} and not exists (select 1 from users)
      returning id
    )
    select exists (select 1 from d) as deleted,
           (select array_agg(slug) from users) as users,
           exists (select 1 from configurations where team_id = ${teamId} and name = ${name}) as found`.execute(db);
  const row = rows[0]!;
  if (row.deleted) return { outcome: "deleted" };
  if (!row.found) return { outcome: "missing" };
  return { outcome: "in use", clusters: row.users ?? [] };
}
