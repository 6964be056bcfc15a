import type { Kysely } from "kysely";
import type { RegistryDatabase, TeamRow } from "./database.js";

/** The team of that name, created when missing (safe when two callers race). */
export async function ensureTeam(db: Kysely<RegistryDatabase>, id: string, name: string): Promise<TeamRow> {
  await db.insertInto("teams").values({ id, name }).onConflict((oc) => oc.column("name").doNothing()).execute();
  return db.selectFrom("teams").selectAll().where("name", "=", name).executeTakeFirstOrThrow();
}

export async function findTeam(db: Kysely<RegistryDatabase>, id: string): Promise<TeamRow | undefined> {
  return db.selectFrom("teams").selectAll().where("id", "=", id).executeTakeFirst();
}

/** Those of `ids` that name a team. */
export async function findExistingTeamIds(db: Kysely<RegistryDatabase>, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db.selectFrom("teams").select("id").where("id", "in", ids).execute();
  return new Set(rows.map((r) => r.id));
}
