// The other services' one client of the cluster registry's internal RPCs, over one HTTP/2 session:
// cluster slugs resolved through a short cache (ClusterService.ResolveClusters), and API keys
// verified (ApiKeyService.VerifyApiKey; the key verifier beside it caches those answers).
// Every submission, batch with subtasks and runner Hello resolves slugs, and runners reconnect in
// waves, so answers are cached; a slug in use can be resolved again in the background once its
// answer is half the TTL old, so callers do not wait for the registry every TTL; and while the
// registry does not answer (a restart) clusters resolved before keep resolving for `staleMs`.
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { ApiKeyService, ClusterService } from "@corral/proto";
import type { Caller } from "./auth.js";
import { createServiceTransport } from "./client.js";
import { UnavailableError } from "./errors.js";

export interface RegistryCluster {
  id: string;
  slug: string;
}

export interface RegistryClient {
  /**
   * A team's clusters by slug ("" names its default cluster). A slug that names no cluster is
   * absent from the answer. Throws UnavailableError when the registry does not answer and a slug
   * has no answer younger than `staleMs`.
   */
  resolveClusters(teamId: string, slugs: readonly string[]): Promise<Map<string, RegistryCluster>>;
  /** The key's caller, or undefined when the registry does not know the key (uncached). */
  verifyApiKey(key: string): Promise<Caller | undefined>;
}

export interface RegistryClientOptions {
  /** The registry's URL and the internal service key; unused when `transport` is given. */
  baseUrl?: string;
  serviceKey?: string;
  /** The transport to the registry: a test seam (default: one HTTP/2 session to `baseUrl`). */
  transport?: Transport;
  /** How long a cluster answer is used (default 5 s). */
  clusterTtlMs?: number;
  /** How long an expired cluster answer bridges a registry that does not answer (default 5 min). */
  clusterStaleMs?: number;
  /** Resolve a slug in use again in the background once its answer is half the TTL old (default true). */
  refreshAhead?: boolean;
  /** Deadline of one ResolveClusters call (default 30 s). */
  clusterTimeoutMs?: number;
  now?: () => number;
}

/** Cached answers kept before the expired ones are swept. */
const MAX_CACHED_CLUSTERS = 10_000;

export function createRegistryClient(options: RegistryClientOptions): RegistryClient {
  const transport =
    options.transport ??
    createServiceTransport({ baseUrl: options.baseUrl ?? "", apiKey: options.serviceKey ?? "" });
  const clusters = createClient(ClusterService, transport);
  const apiKeys = createClient(ApiKeyService, transport);
  const ttlMs = options.clusterTtlMs ?? 5_000;
  const staleMs = options.clusterStaleMs ?? 300_000;
  const refreshAhead = options.refreshAhead ?? true;
  const timeoutMs = options.clusterTimeoutMs ?? 30_000;
  const clock = options.now ?? Date.now;
  const cache = new Map<string, { cluster: RegistryCluster; expires: number }>();
  const key = (teamId: string, slug: string) => `${teamId}\u0000${slug}`;

  /** The clusters the registry names for `slugs`; unknown ones absent. */
  const ask = async (teamId: string, slugs: string[]): Promise<Map<string, RegistryCluster>> => {
    try {
      const res = await clusters.resolveClusters({ teamId, slugs }, { timeoutMs });
      const found = new Map<string, RegistryCluster>();
      slugs.forEach((s, i) => {
        const c = res.clusters[i];
        if (c) found.set(s, { id: c.id, slug: c.slug });
      });
      return found;
    } catch (err) {
      if (ConnectError.from(err).code !== Code.NotFound) {
        throw new UnavailableError("the cluster registry did not answer", { cause: err });
      }
      // The registry names no slug in a machine-readable way: find the unknown ones by asking singly.
      const found = new Map<string, RegistryCluster>();
      if (slugs.length > 1) for (const s of slugs) for (const [k, c] of await ask(teamId, [s])) found.set(k, c);
      return found;
    }
  };

  const refreshing = new Set<string>();
  const refresh = (teamId: string, slug: string) => {
    const k = key(teamId, slug);
    if (refreshing.has(k)) return;
    refreshing.add(k);
    ask(teamId, [slug])
      .then((found) => {
        const c = found.get(slug);
        if (c) cache.set(k, { cluster: c, expires: clock() + ttlMs });
        // A slug that stopped resolving is dropped, so the next caller asks (and learns) itself.
        else cache.delete(k);
      })
      // An outage keeps the answer: the next caller past the TTL asks again.
      .catch(() => {})
      .finally(() => refreshing.delete(k));
  };

  return {
    async resolveClusters(teamId, slugs) {
      const now = clock();
      const out = new Map<string, RegistryCluster>();
      const missing: string[] = [];
      for (const s of new Set(slugs)) {
        const hit = cache.get(key(teamId, s));
        if (hit && hit.expires > now) {
          out.set(s, hit.cluster);
          if (refreshAhead && hit.expires - now <= ttlMs / 2) refresh(teamId, s);
        } else missing.push(s);
      }
      if (missing.length === 0) return out;
      let found: Map<string, RegistryCluster>;
      try {
        found = await ask(teamId, missing);
      } catch (err) {
        const stale = missing.map((s) => cache.get(key(teamId, s)));
        if (stale.some((h) => !h || now - h.expires > staleMs)) throw err;
        missing.forEach((s, i) => out.set(s, stale[i]!.cluster));
        return out;
      }
      for (const s of missing) {
        const c = found.get(s);
        if (!c) continue;
        out.set(s, c);
        cache.set(key(teamId, s), { cluster: c, expires: now + ttlMs });
      }
      // Answers past any stale use go once the cache is large.
      if (cache.size > MAX_CACHED_CLUSTERS) for (const [k, v] of cache) if (v.expires + staleMs <= now) cache.delete(k);
      return out;
    },

    async verifyApiKey(apiKey) {
      try {
        const res = await apiKeys.verifyApiKey({ key: apiKey }, { timeoutMs: 5_000 });
        return { kind: "user", teamId: res.teamId, keyId: res.keyId };
      } catch (err) {
        const ce = ConnectError.from(err);
        if (ce.code === Code.Unauthenticated || ce.code === Code.NotFound || ce.code === Code.InvalidArgument) return undefined;
        throw ce;
      }
    },
  };
}
