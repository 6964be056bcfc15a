// The suite's shared job cache (JobCacheService, served by the task broker): what ctx.cache uses
// on a runner connected to a suite unless it is given another backend. Reads are not cached
// locally: a key may be overwritten or deleted by a task on another runner.
import { Code, ConnectError, createClient, type Client as RpcClient, type Transport } from "@connectrpc/connect";
import { JobCacheService } from "@corral/proto";
import { InMemoryCache, type CacheBackend } from "./cache.js";
import { toApiError } from "./errors.js";
import type { Logger } from "./logger.js";

/**
 * Keeps a job's entries in the suite (the broker's Redis), so every runner of the team that
 * reaches the suite sees them. Limits (per value, per job) and retention are the suite's; a value
 * over them is refused with a `ResourceError` (RESOURCE_EXHAUSTED) naming the limit.
 *
 * @example
 * ```ts
 * const runner = client.runner({ tasks: [Tile, Render] }); // uses a SuiteCache by default
 * const runner2 = client.runner({ tasks: [Tile], cache: new InMemoryCache() }); // only in this process
 * ```
 */
export class SuiteCache implements CacheBackend {
  readonly #api: RpcClient<typeof JobCacheService>;
  readonly #logger: Logger | undefined;
  /** Set when the suite serves no JobCacheService (an older broker): entries stay in this process. */
  #local: InMemoryCache | undefined;

  constructor(transport: Transport, options: { logger?: Logger } = {}) {
    this.#api = createClient(JobCacheService, transport);
    this.#logger = options.logger;
  }

  async get(jobId: string, key: string): Promise<Uint8Array | undefined> {
    if (this.#local) return this.#local.get(jobId, key);
    const r = await this.#call(() => this.#api.getCacheEntry({ jobId, key }));
    if (r === undefined) return this.#local!.get(jobId, key);
    return r.found ? r.value : undefined;
  }

  async put(jobId: string, key: string, value: Uint8Array): Promise<void> {
    if (this.#local) return this.#local.put(jobId, key, value);
    const r = await this.#call(() => this.#api.putCacheEntry({ jobId, key, value }));
    if (r === undefined) return this.#local!.put(jobId, key, value);
  }

  async delete(jobId: string, key: string): Promise<void> {
    if (this.#local) return this.#local.delete(jobId, key);
    const r = await this.#call(() => this.#api.deleteCacheEntry({ jobId, key }));
    if (r === undefined) return this.#local!.delete(jobId, key);
  }

  /** The call's answer; undefined once the suite turned out to serve no job cache. */
  async #call<T>(fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ConnectError && err.code === Code.Unimplemented) {
        if (!this.#local) {
          this.#local = new InMemoryCache();
          this.#logger?.warn(
            "the suite serves no job cache (corral.broker.v1.JobCacheService; an older broker?): ctx.cache keeps entries in this runner's memory, not shared with other runners",
          );
        }
        return undefined;
      }
      throw toApiError(err);
    }
  }
}
