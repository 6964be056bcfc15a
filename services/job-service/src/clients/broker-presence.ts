// The RunnerPresence of a deployed job-service: the broker's internal DispatchService.ListSessions
// (every replica's sessions of the team), grouped by cluster slug.
import type { Client } from "@connectrpc/connect";
import type { DispatchService } from "@corral/proto";
import type { RunnerPresence } from "../domain/ports.js";
import type { IdentifierRef } from "../domain/wait-reasons.js";

export function createBrokerPresence(client: Client<typeof DispatchService>, timeoutMs = 2_000): RunnerPresence {
  return {
    async online(teamId) {
      const out = new Map<string, IdentifierRef[][]>();
      // One answer (page size 0): each page would ask every replica again.
      const res = await client.listSessions({ teamId, pageSize: 0 }, { timeoutMs });
      for (const s of res.sessions) {
        if (s.draining) continue;
        const list = out.get(s.clusterSlug) ?? [];
        list.push(s.identifiers.map((i) => ({ name: i.name, version: i.version })));
        out.set(s.clusterSlug, list);
      }
      return out;
    },
  };
}
