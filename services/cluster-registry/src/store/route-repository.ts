// SQL for gateway routes; every query is scoped by team.
import type { Kysely } from "kysely";
import type { RegistryDatabase, RouteRow } from "./database.js";

export interface RouteRecord {
  id: string;
  teamId: string;
  name: string;
  version: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  timeoutMs: number;
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  description: string;
  createTime: Date;
}

function toRecord(row: RouteRow): RouteRecord {
  return {
    id: row.id,
    teamId: row.team_id,
    name: row.name,
    version: row.version,
    method: row.method,
    url: row.url,
    headers: row.headers,
    timeoutMs: row.timeout_ms,
    maxAttempts: row.max_attempts,
    initialBackoffMs: row.initial_backoff_ms,
    maxBackoffMs: row.max_backoff_ms,
    description: row.description,
    createTime: row.create_time,
  };
}

/** Inserts the route; undefined when the team already routes that identifier. */
export async function insertRoute(db: Kysely<RegistryDatabase>, route: Omit<RouteRecord, "createTime">): Promise<RouteRecord | undefined> {
  const row = await db
    .insertInto("routes")
    .values({
      id: route.id,
      team_id: route.teamId,
      name: route.name,
      version: route.version,
      method: route.method,
      url: route.url,
      headers: JSON.stringify(route.headers),
      timeout_ms: route.timeoutMs,
      max_attempts: route.maxAttempts,
      initial_backoff_ms: route.initialBackoffMs,
      max_backoff_ms: route.maxBackoffMs,
      description: route.description,
    })
    .onConflict((oc) => oc.columns(["team_id", "name", "version"]).doNothing())
    .returningAll()
    .executeTakeFirst();
  return row && toRecord(row);
}

export async function findRoute(db: Kysely<RegistryDatabase>, teamId: string, id: string): Promise<RouteRecord | undefined> {
  const row = await db.selectFrom("routes").selectAll().where("team_id", "=", teamId).where("id", "=", id).executeTakeFirst();
  return row && toRecord(row);
}

/** The team's routes after `after` (an id), oldest first. */
export async function listRoutes(db: Kysely<RegistryDatabase>, teamId: string, after: string | undefined, limit: number): Promise<RouteRecord[]> {
  let query = db.selectFrom("routes").selectAll().where("team_id", "=", teamId);
  if (after !== undefined) query = query.where("id", ">", after);
  const rows = await query.orderBy("id").limit(limit).execute();
  return rows.map(toRecord);
}

/** True when the team had the route. */
export async function deleteRoute(db: Kysely<RegistryDatabase>, teamId: string, id: string): Promise<boolean> {
  const result = await db.deleteFrom("routes").where("team_id", "=", teamId).where("id", "=", id).executeTakeFirst();
  return result.numDeletedRows > 0n;
}
