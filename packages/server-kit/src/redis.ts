// Redis through ioredis. Every key a service writes goes through `keyPrefix`, so tests can give
// each file its own prefix and share one server.
import { Redis, type RedisOptions } from "ioredis";

export interface RedisConnectionOptions {
  url: string;
  keyPrefix?: string;
  /** Give up a command after this many reconnect attempts (null: queue until reconnected). */
  maxRetriesPerRequest?: number | null;
  name?: string;
}

export function createRedis(options: RedisConnectionOptions): Redis {
  const extra: RedisOptions = {
    keyPrefix: options.keyPrefix ?? "",
    maxRetriesPerRequest: options.maxRetriesPerRequest === undefined ? 20 : options.maxRetriesPerRequest,
    connectionName: options.name,
    retryStrategy: (times) => Math.min(50 * times, 2_000),
    lazyConnect: false,
  };
  const redis = new Redis(options.url, extra);
  // Errors surface on commands; an unhandled 'error' event would crash the process.
  redis.on("error", () => {});
  return redis;
}
