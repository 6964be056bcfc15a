// Where clusters run: a provider and a region (Kamiwaza's locations), per team.
import type { Kysely } from "kysely";
import { decodePageToken, NotFoundError, pageSize, toPage, type Page } from "@corral/server-kit";
import { isUuid, newId } from "./ids.js";
import { deleteSpecTarget, resolveSpecTarget } from "./spec-references.js";
import type { RegistryDatabase } from "./store/database.js";
import {
  findLocation,
  insertLocation,
  listLocations,
  updateLocation,
  type LocationRecord,
} from "./store/location-repository.js";

export interface Locations {
  create(teamId: string, input: { name: string; provider: string; region: string }): Promise<LocationRecord>;
  update(
    teamId: string,
    id: string,
    changes: { name?: string; provider?: string; region?: string },
  ): Promise<LocationRecord>;
  get(teamId: string, id: string): Promise<LocationRecord>;
  list(teamId: string, pageSize: number, pageToken: string): Promise<Page<LocationRecord>>;
  /** FAILED_PRECONDITION while a cluster or configuration spec names it. */
  delete(teamId: string, id: string): Promise<void>;
}

export function createLocations(db: Kysely<RegistryDatabase>): Locations {
  return {
    async create(teamId, input) {
      return insertLocation(db, { id: newId(), teamId, ...input });
    },

    async update(teamId, idOrName, changes) {
      const updated = await updateLocation(db, teamId, await resolveSpecTarget(db, teamId, "location", idOrName), changes);
      if (!updated) throw new NotFoundError("location", idOrName);
      return updated;
    },

    async get(teamId, idOrName) {
      const found = await findLocation(db, teamId, await resolveSpecTarget(db, teamId, "location", idOrName));
      if (!found) throw new NotFoundError("location", idOrName);
      return found;
    },

    async list(teamId, requestedSize, pageToken) {
      const limit = pageSize(requestedSize);
      const rows = await listLocations(db, teamId, decodePageToken(pageToken, isUuid), limit + 1);
      return toPage(rows, limit, (r) => r.id);
    },

    delete(teamId, id) {
      return deleteSpecTarget(db, teamId, "location", id);
    },
  };
}
