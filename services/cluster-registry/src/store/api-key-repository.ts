import type { Kysely } from "kysely";
import type { ApiKeyRow, RegistryDatabase } from "./database.js";

export interface NewApiKey {
  id: string;
  keyId: string;
  teamId: string;
  name: string;
  secretHash: Buffer;
  /** A runner-scoped key's cluster. */
  clusterId?: string;
}

/** Inserts the key; undefined when its key id is taken (the caller draws another). */
export async function insertApiKey(db: Kysely<RegistryDatabase>, key: NewApiKey): Promise<ApiKeyRow | undefined> {
  return db
    .insertInto("api_keys")
    .values({
      id: key.id,
      key_id: key.keyId,
      team_id: key.teamId,
      name: key.name,
      secret_hash: key.secretHash,
      ...(key.clusterId === undefined ? {} : { scope: "runner" as const, cluster_id: key.clusterId }),
    })
    .onConflict((oc) => oc.column("key_id").doNothing())
    .returningAll()
    .executeTakeFirst();
}

export async function findApiKeyWithTeam(
  db: Kysely<RegistryDatabase>,
  keyId: string,
): Promise<(ApiKeyRow & { team_name: string }) | undefined> {
  return db
    .selectFrom("api_keys")
    .innerJoin("teams", "teams.id", "api_keys.team_id")
    .selectAll("api_keys")
    .select("teams.name as team_name")
    .where("api_keys.key_id", "=", keyId)
    .executeTakeFirst();
}

export async function listApiKeys(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  after: string | undefined,
  limit: number,
): Promise<ApiKeyRow[]> {
  let query = db.selectFrom("api_keys").selectAll().where("team_id", "=", teamId);
  if (after !== undefined) query = query.where("id", ">", after);
  return query.orderBy("id").limit(limit).execute();
}

/** Marks the team's key revoked (keeping the first revoke time); undefined when there is none. */
export async function revokeApiKey(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  keyId: string,
): Promise<ApiKeyRow | undefined> {
  return db
    .updateTable("api_keys")
    .set((eb) => ({ revoke_time: eb.fn.coalesce("revoke_time", eb.fn<Date>("now", [])) }))
    .where("team_id", "=", teamId)
    .where("key_id", "=", keyId)
    .returningAll()
    .executeTakeFirst();
}
