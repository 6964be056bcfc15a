// The real Ledger, PresenceReporter and ClusterResolver: job-service's TaskLedgerService, the
// registry's NodeService.ReportPresence and ClusterService.ResolveClusters, over gRPC with the
// internal service key.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { NodeService, TaskLedgerService } from "@corral/proto";
import { createServiceClient, type RegistryClient } from "@corral/server-kit";
import type { PresenceReporter } from "./presence-publisher.js";
import type { ProgressLedger } from "./session/progress-forwarder.js";
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

/** TaskLedgerService.ReportProgress: live progress of running tasks (short timeout: best effort). */
export function createProgressClient(options: { baseUrl: string; serviceKey: string }): ProgressLedger {
  const client = createServiceClient(TaskLedgerService, { baseUrl: options.baseUrl, apiKey: options.serviceKey, timeoutMs: 10_000 });
  return { reportProgress: (request) => client.reportProgress(request) };
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
    async report(reports, brokerInstance) {
      const answer = await client.reportPresence({ reports, brokerInstance });
      return { keepsInstances: answer.keepsInstances };
    },
  };
}

/**
 * Resolves a runner's cluster slugs with server-kit's registry client (whose cache rides out the
 * waves in which runners reconnect); a slug that names no cluster is absent from the answer.
 */
export function createClusterResolverClient(registry: RegistryClient): ClusterResolver {
  return { resolve: (teamId, slugs) => registry.resolveClusters(teamId, slugs) };
}
