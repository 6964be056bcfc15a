// A spec may name a location and a hardware profile; both must be the team's own, and neither can
// be deleted while a spec names it.
import { sql, type Kysely } from "kysely";
import { FailedPreconditionError, NotFoundError } from "@corral/server-kit";
import { isUuid } from "./ids.js";
import type { SpecFields } from "./spec.js";
import type { RegistryDatabase } from "./store/database.js";
import { findHardware } from "./store/hardware-repository.js";
import { findLocation } from "./store/location-repository.js";

/** Throws NOT_FOUND naming the location or hardware profile the team does not have. */
export async function checkSpecReferences(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  spec: SpecFields,
): Promise<void> {
  const { locationId, hardwareId } = spec;
  if (locationId !== undefined && locationId !== "") {
    if (!isUuid(locationId) || !(await findLocation(db, teamId, locationId))) {
      throw new NotFoundError("location", locationId);
    }
  }
  if (hardwareId !== undefined && hardwareId !== "") {
    if (!isUuid(hardwareId) || !(await findHardware(db, teamId, hardwareId))) {
      throw new NotFoundError("hardware", hardwareId);
    }
  }
}

/**
 * Deletes the team's location or hardware profile. NOT_FOUND when the team has none with that id;
 * FAILED_PRECONDITION naming the clusters and configurations whose spec still names it (the
 * foreign keys of migration 0007 decide, so a spec written meanwhile cannot be left dangling).
 */
export async function deleteSpecTarget(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  kind: "location" | "hardware",
  id: string,
): Promise<void> {
  if (!isUuid(id)) throw new NotFoundError(kind, id);
  const table = kind === "location" ? "locations" : "hardware";
  const column = kind === "location" ? "location_id" : "hardware_id";
  try {
    const { rows } = await sql<{ id: string }>`
      delete from ${sql.table(table)} where team_id = ${teamId} and id = ${id} returning id`.execute(db);
    if (rows.length === 0) throw new NotFoundError(kind, id);
  } catch (err) {
    if ((err as { code?: string }).code !== "23503") throw err;
    const { rows } = await sql<{ what: string }>`
      select 'cluster ' || slug as what from clusters where ${sql.ref(column)} = ${id}
      union all
      select 'configuration ' || name from configurations where ${sql.ref(column)} = ${id}
      order by what limit 10`.execute(db);
    const users = rows.length > 0 ? rows.map((r) => r.what).join(", ") : "a cluster or configuration";
    throw new FailedPreconditionError(`${kind} ${id} is named in the spec of ${users}: change those specs first`, { cause: err });
  }
}
