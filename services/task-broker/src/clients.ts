// The real Ledger, PresenceReporter and ClusterResolver: job-service's TaskLedgerService, the
// registry's NodeService.ReportPresence and ClusterService.ResolveClusters, over gRPC with the
// internal service key.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { ClusterService, NodeService, TaskLedgerService } from "@corral/proto";
import { createServiceClient, UnavailableError } from "@corral/server-kit";
import type { PresenceReporter } from "./presence-publisher.js";
import type { ResyncRequest } from "./store-marker.js";
import type { Ledger } from "./result-batcher.js";
import type { ClusterRef } from "./runner-session.js";
import type { ClusterResolver } from "./session-hub.js";

export function createLedgerClient(options: { baseUrl: string; serviceKey: string; timeoutMs?: number }): Ledger {
  const client = createServiceClient(TaskLedgerService, {
    baseUrl: options.baseUrl,
    apiKey: options.serviceKey,
    timeoutMs: options.timeoutMs ?? 30_000,
  });
  return { reportResults: (request) => client.reportResults(request) };
}

/** TaskLedgerService.ResyncDispatch, for when the broker finds its Redis empty. */
export function createResyncClient(options: { baseUrl: string; serviceKey: string }): (request: ResyncRequest) => Promise<void> {
  const client = createServiceClient(TaskLedgerService, { baseUrl: options.baseUrl, apiKey: options.serviceKey, timeoutMs: 120_000 });
  return async ({ reason, brokerId, lostSince }) => {
    await client.resyncDispatch({ reason, brokerId, lostSince: timestampFromDate(lostSince) });
  };
}

export function createPresenceClient(options: { baseUrl: string; serviceKey: string; timeoutMs?: number }): PresenceReporter {
  const client = createServiceClient(NodeService, {
    baseUrl: options.baseUrl,
    apiKey: options.serviceKey,
    timeoutMs: options.timeoutMs ?? 10_000,
  });
  return {
    async report(reports) {
      await client.reportPresence({ reports });
    },
  };
}

/**
 * Resolves a runner's cluster slug with the registry's internal ResolveClusters. Runners reconnect
 * in waves (a broker drains, a network blip), so answers are cached briefly.
 */
export function createClusterResolverClient(options: {
  baseUrl: string;
  serviceKey: string;
  ttlMs?: number;
}): ClusterResolver {
  const client = createServiceClient(ClusterService, { baseUrl: options.baseUrl, apiKey: options.serviceKey, timeoutMs: 10_000 });
  const ttlMs = options.ttlMs ?? 10_000;
  const cache = new Map<string, { cluster: ClusterRef; expires: number }>();
  return {
    async resolve(teamId, slugs) {
      const now = Date.now();
      const out = new Map<string, ClusterRef>();
      for (const slug of new Set(slugs)) {
        const key = `${teamId}\u0000${slug}`;
        const hit = cache.get(key);
        if (hit && hit.expires > now) {
          out.set(slug, hit.cluster);
          continue;
        }
        try {
          const res = await client.resolveClusters({ teamId, slugs: [slug] });
          const c = res.clusters[0];
          if (!c) continue;
          const cluster = { id: c.id, slug: c.slug };
          out.set(slug, cluster);
          cache.set(key, { cluster, expires: now + ttlMs });
        } catch (err) {
          if (ConnectError.from(err).code === Code.NotFound) continue;
          // The registry is restarting: a cluster resolved before keeps resolving for a while.
          if (hit && now - hit.expires < 300_000) {
            out.set(slug, hit.cluster);
            continue;
          }
          throw new UnavailableError("the cluster registry did not answer", { cause: err });
        }
      }
      if (cache.size > 10_000) for (const [k, v] of cache) if (v.expires + 300_000 <= now) cache.delete(k);
      return out;
    },
  };
}
