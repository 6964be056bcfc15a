// The ClusterResolver of a deployed job-service: the registry's internal ResolveClusters, with a
// short cache because every submission and every batch with subtasks resolves slugs. A slug in
// use is resolved again in the background once its answer is half the TTL old, so submissions
// do not wait for the registry every TTL.
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { ClusterService } from "@corral/proto";
import { NotFoundError, UnavailableError } from "@corral/server-kit";
import type { ClusterResolver, ResolvedCluster } from "../domain/ports.js";

export function createRegistryClusterResolver(
  client: Client<typeof ClusterService>,
  options: { ttlMs?: number; staleMs?: number } = {},
): ClusterResolver {
  const ttlMs = options.ttlMs ?? 5_000;
  // While the registry does not answer (a restart), clusters resolved before keep resolving.
  const staleMs = options.staleMs ?? 300_000;
  const cache = new Map<string, { cluster: ResolvedCluster; expires: number }>();
  const key = (teamId: string, slug: string) => `${teamId}\u0000${slug}`;

  const call = async (teamId: string, slugs: string[]): Promise<ResolvedCluster[]> => {
    try {
      const res = await client.resolveClusters({ teamId, slugs });
      return res.clusters.map((c) => ({ id: c.id, slug: c.slug }));
    } catch (err) {
      const ce = ConnectError.from(err);
      if (ce.code !== Code.NotFound) throw new UnavailableError("the cluster registry did not answer", { cause: err });
      // The registry names no slug in a machine-readable way: find the unknown one by asking singly.
      if (slugs.length === 1) throw new NotFoundError("cluster", slugs[0]!, { cause: err });
      for (const s of slugs) await call(teamId, [s]);
      throw new NotFoundError("cluster", slugs[0]!, { cause: err });
    }
  };

  const refreshing = new Set<string>();
  const refresh = (teamId: string, slug: string) => {
    const k = key(teamId, slug);
    if (refreshing.has(k)) return;
    refreshing.add(k);
    call(teamId, [slug])
      .then(([c]) => {
        if (c) cache.set(k, { cluster: c, expires: Date.now() + ttlMs });
        else cache.delete(k);
      })
      // A slug that stopped resolving is dropped, so the next submission asks (and fails) itself.
      .catch((err: unknown) => {
        if (err instanceof NotFoundError) cache.delete(k);
      })
      .finally(() => refreshing.delete(k));
  };

  return {
    async resolve(teamId, slugs) {
      const now = Date.now();
      const out = new Map<string, ResolvedCluster>();
      const missing: string[] = [];
      for (const s of new Set(slugs)) {
        const hit = cache.get(key(teamId, s));
        if (hit && hit.expires > now) {
          out.set(s, hit.cluster);
          if (hit.expires - now <= ttlMs / 2) refresh(teamId, s);
        } else missing.push(s);
      }
      if (missing.length > 0) {
        let clusters: ResolvedCluster[];
        try {
          clusters = await call(teamId, missing);
        } catch (err) {
          const stale = missing.map((s) => cache.get(key(teamId, s)));
          if (!(err instanceof UnavailableError) || stale.some((h) => !h || now - h.expires > staleMs)) throw err;
          missing.forEach((s, i) => out.set(s, stale[i]!.cluster));
          return out;
        }
        missing.forEach((s, i) => {
          const c = clusters[i];
          if (!c) throw new NotFoundError("cluster", s);
          out.set(s, c);
          cache.set(key(teamId, s), { cluster: c, expires: now + ttlMs });
        });
        if (cache.size > 10_000) for (const [k, v] of cache) if (v.expires <= now) cache.delete(k);
      }
      return out;
    },
  };
}
