// The ClusterResolver of a deployed job-service: server-kit's cached registry client (the one keys
// are verified over), with a slug that names no cluster answered by a NotFoundError naming it.
import { NotFoundError, type RegistryClient } from "@corral/server-kit";
import type { ClusterResolver } from "../domain/ports.js";

export function createRegistryClusterResolver(registry: RegistryClient): ClusterResolver {
  return {
    async resolve(teamId, slugs) {
      const found = await registry.resolveClusters(teamId, slugs);
      for (const s of new Set(slugs)) if (!found.has(s)) throw new NotFoundError("cluster", s);
      return found;
    },
  };
}
