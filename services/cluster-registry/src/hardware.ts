// Named hardware profiles (Kamiwaza's hardware) that cluster specs refer to, per team.
import type { Kysely } from "kysely";
import { decodePageToken, NotFoundError, pageSize, toPage, type Page } from "@corral/server-kit";
import { isUuid, newId } from "./ids.js";
import { deleteSpecTarget, resolveSpecTarget } from "./spec-references.js";
import type { RegistryDatabase } from "./store/database.js";
import { findHardware, insertHardware, listHardware, type HardwareRecord } from "./store/hardware-repository.js";

export interface HardwareInput {
  name: string;
  gpuCount: number;
  gpuType: string;
  cpuCores: number;
  memoryBytes: bigint;
}

export interface HardwareProfiles {
  create(teamId: string, input: HardwareInput): Promise<HardwareRecord>;
  get(teamId: string, id: string): Promise<HardwareRecord>;
  list(teamId: string, pageSize: number, pageToken: string): Promise<Page<HardwareRecord>>;
  /** FAILED_PRECONDITION while a cluster or configuration spec names it. */
  delete(teamId: string, id: string): Promise<void>;
}

export function createHardwareProfiles(db: Kysely<RegistryDatabase>): HardwareProfiles {
  return {
    async create(teamId, input) {
      return insertHardware(db, { id: newId(), teamId, ...input });
    },

    async get(teamId, idOrName) {
      const found = await findHardware(db, teamId, await resolveSpecTarget(db, teamId, "hardware", idOrName));
      if (!found) throw new NotFoundError("hardware", idOrName);
      return found;
    },

    async list(teamId, requestedSize, pageToken) {
      const limit = pageSize(requestedSize);
      const rows = await listHardware(db, teamId, decodePageToken(pageToken, isUuid), limit + 1);
      return toPage(rows, limit, (r) => r.id);
    },

    delete(teamId, id) {
      return deleteSpecTarget(db, teamId, "hardware", id);
    },
  };
}
