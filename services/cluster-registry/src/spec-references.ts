// A spec may name a location and a hardware profile (by id or by name, stored by id); both must
// be the team's own, and neither can be deleted while a spec names it.
import { sql, type Kysely } from "kysely";
import { FailedPreconditionError, NotFoundError } from "@corral/server-kit";
import { isUuid } from "./ids.js";
import type { SpecFields } from "./spec.js";
import type { RegistryDatabase } from "./store/database.js";
import { findHardware } from "./store/hardware-repository.js";
import { findLocation } from "./store/location-repository.js";

/**
 * The id of the team's location or hardware profile named by `idOrName`: an id, or a name that
 * one of them has. NOT_FOUND when none matches; FAILED_PRECONDITION when several share the name
 * (names are not unique, so then only the id says which).
 */
export async function resolveSpecTarget(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  kind: "location" | "hardware",
  idOrName: string,
): Promise<string> {
  if (isUuid(idOrName)) {
    const found = kind === "location" ? await findLocation(db, teamId, idOrName) : await findHardware(db, teamId, idOrName);
    if (found) return idOrName;
  }
  const table = kind === "location" ? "locations" : "hardware";
  const { rows } = await sql<{ id: string }>`
    select id from ${sql.table(table)} where team_id = ${teamId} and name = ${idOrName} order by id limit 2`.execute(db);
  if (rows.length === 0) throw new NotFoundError(kind, idOrName);
  if (rows.length > 1) {
    throw new FailedPreconditionError(`several ${kind === "location" ? "locations" : "hardware profiles"} are named ${JSON.stringify(idOrName)}: use the id`);
  }
  return rows[0]!.id;
}

/**
 * The spec with its location and hardware profile named by id (a name is resolved); NOT_FOUND
 * naming one the team does not have.
 */
export async function resolveSpecReferences<S extends Pick<SpecFields, "locationId" | "hardwareId">>(
  db: Kysely<RegistryDatabase>,
  teamId: string,
  spec: S,
): Promise<S> {
  const out = { ...spec };
  if (spec.locationId !== undefined && spec.locationId !== "") out.locationId = await resolveSpecTarget(db, teamId, "location", spec.locationId);
  if (spec.hardwareId !== undefined && spec.hardwareId !== "") out.hardwareId = await resolveSpecTarget(db, teamId, "hardware", spec.hardwareId);
  return out;
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
  idOrName: string,
): Promise<void> {
  const id = await resolveSpecTarget(db, teamId, kind, idOrName);
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
