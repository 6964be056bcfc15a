// Named cluster specs (Coiled's cluster configurations). Built-ins live under the reserved
// `corral/` prefix and belong to no team; `corral/default` fills clusters created without one.
import type { Kysely } from "kysely";
import {
  AlreadyExistsError,
  decodePageToken,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  pageSize,
  toPage,
  type Page,
} from "@corral/server-kit";
import { newId } from "./ids.js";
import { resolveSpecReferences } from "./spec-references.js";
import type { SpecFields } from "./spec.js";
import {
  deleteConfiguration,
  findConfiguration,
  insertConfiguration,
  listConfigurations,
  type ConfigurationRecord,
} from "./store/configuration-repository.js";
import type { RegistryDatabase } from "./store/database.js";

export const DEFAULT_CONFIGURATION = "corral/default";
const BUILTIN_PREFIX = "corral/";

export interface Configurations {
  create(
    teamId: string,
    input: { name: string; description: string; spec: SpecFields },
  ): Promise<ConfigurationRecord>;
  /** The team's configuration or a built-in one; NOT_FOUND otherwise. */
  get(teamId: string, name: string): Promise<ConfigurationRecord>;
  list(teamId: string, pageSize: number, pageToken: string): Promise<Page<ConfigurationRecord>>;
  delete(teamId: string, name: string): Promise<void>;
}

export function createConfigurations(db: Kysely<RegistryDatabase>): Configurations {
  async function get(teamId: string, name: string): Promise<ConfigurationRecord> {
    const found = await findConfiguration(db, teamId, name);
    if (!found) throw new NotFoundError("configuration", name);
    return found;
  }

  return {
    get,

    async create(teamId, input) {
      if (input.name.startsWith(BUILTIN_PREFIX)) {
        throw new InvalidArgumentError("name", `the prefix ${BUILTIN_PREFIX} is reserved for built-in configurations`);
      }
      // A configuration is not made from another one, so it records none.
      const { configuration: _ignored, ...named } = input.spec;
      const spec = await resolveSpecReferences(db, teamId, named);
      const created = await insertConfiguration(db, {
        id: newId(),
        teamId,
        name: input.name,
        description: input.description,
        spec,
      });
      if (!created) throw new AlreadyExistsError(`configuration ${JSON.stringify(input.name)} already exists`);
      return created;
    },

    async list(teamId, requestedSize, pageToken) {
      const limit = pageSize(requestedSize);
      const after = decodePageToken(pageToken);
      const rows = await listConfigurations(db, teamId, after, limit + 1);
      return toPage(rows, limit, (r) => r.name);
    },

    async delete(teamId, name) {
      const found = await get(teamId, name);
      if (found.builtin) throw new FailedPreconditionError(`configuration ${JSON.stringify(name)} is built in`);
      const result = await deleteConfiguration(db, teamId, name);
      if (result.outcome === "missing") throw new NotFoundError("configuration", name);
      if (result.outcome === "in use") {
        throw new FailedPreconditionError(
          `configuration ${JSON.stringify(name)} is used by cluster ${result.clusters.join(", ")}: delete those clusters first`,
        );
      }
    },
  };
}
