// A spec may name a location and a hardware profile; both must be the team's own.
import type { Kysely } from "kysely";
import { NotFoundError } from "@corral/server-kit";
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
