import type { Kysely } from "kysely";
import type { LocationRow, RegistryDatabase } from "./database.js";

export interface LocationRecord {
  id: string;
  teamId: string;
  name: string;
  provider: string;
  region: string;
  createTime: Date;
  updateTime: Date;
}

function toRecord(row: LocationRow): LocationRecord {
  return {
    id: row.id,
    teamId: row.team_id,
    name: row.name,
    provider: row.provider,
    region: row.region,
    createTime: row.create_time,
    updateTime: row.update_time,
  };
}

export async function insertLocation(
  db: Kysely<RegistryDatabase>,
  location: { id: string; teamId: string; name: string; provider: string; region: string },
): Promise<LocationRecord> {
  const row = await db
    .insertInto("locations")
    .values({
      id: location.id,
      team_id: location.teamId,
      name: location.name,
      provider: location.provider,
      region: location.region,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toRecord(row);
}

export async function findLocation(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  id: string,
): Promise<LocationRecord | undefined> {
  const row = await db
    .selectFrom("locations")
    .selectAll()
    .where("team_id", "=", teamId)
    .where("id", "=", id)
    .executeTakeFirst();
  return row && toRecord(row);
}

export async function updateLocation(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  id: string,
  changes: { name?: string; provider?: string; region?: string },
): Promise<LocationRecord | undefined> {
  const row = await db
    .updateTable("locations")
    .set((eb) => ({
      ...(changes.name === undefined ? {} : { name: changes.name }),
      ...(changes.provider === undefined ? {} : { provider: changes.provider }),
      ...(changes.region === undefined ? {} : { region: changes.region }),
      update_time: eb.fn<Date>("now", []),
    }))
    .where("team_id", "=", teamId)
    .where("id", "=", id)
    .returningAll()
    .executeTakeFirst();
  return row && toRecord(row);
}

export async function listLocations(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  after: string | undefined,
  limit: number,
): Promise<LocationRecord[]> {
  let query = db.selectFrom("locations").selectAll().where("team_id", "=", teamId);
  if (after !== undefined) query = query.where("id", ">", after);
  const rows = await query.orderBy("id").limit(limit).execute();
  return rows.map(toRecord);
}
