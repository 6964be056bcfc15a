// JobCacheService: the suite's shared job cache (ctx.cache), served by the broker so every runner
// that reaches the broker reaches it. Thin: the caller's team scopes every key, the store holds
// the rules and the Redis scripts.
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { JobCacheService } from "@corral/proto";
import { requireWorker } from "@corral/server-kit";
import type { JobCacheStore } from "./redis/job-cache-store.js";

export function createJobCacheService(store: JobCacheStore): ServiceImpl<typeof JobCacheService> {
  return {
    async getCacheEntry(req, ctx: HandlerContext) {
      const { teamId } = requireWorker(ctx);
      const value = await store.get(teamId, req.jobId, req.key);
      return value === undefined ? { found: false } : { found: true, value };
    },
    async putCacheEntry(req, ctx: HandlerContext) {
      const { teamId } = requireWorker(ctx);
      return { jobBytes: await store.put(teamId, req.jobId, req.key, req.value) };
    },
    async deleteCacheEntry(req, ctx: HandlerContext) {
      const { teamId } = requireWorker(ctx);
      await store.delete(teamId, req.jobId, req.key);
      return {};
    },
  };
}
