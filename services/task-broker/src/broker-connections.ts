// The broker's two Redis connections, whatever the number of runners: `<name>:cmd` for commands
// (auto-pipelined: concurrent sessions' Lua calls in one tick go out as one pipeline) and
// `<name>:sub` for wake-ups and replica requests. Both are duplicates of the caller's client, or of
// a template built from a URL (which never connects itself).
import { createRedisTemplate, duplicateConnection, isRedisClient, type RedisClient, type RedisTarget } from "./redis/connection.js";

export interface BrokerConnections {
  /** Commands. */
  readonly redis: RedisClient;
  /** Pub/Sub: wake channels and the replica bus. */
  readonly subscriber: RedisClient;
  /** Pub/Sub channels ignore the key prefix; the broker's channels carry this one instead. */
  readonly channelPrefix: string;
  /** Quits both connections (and drops the template the broker made). */
  close(): Promise<void>;
}

export function openBrokerConnections(target: RedisClient | RedisTarget, connectionName: string): BrokerConnections {
  const ownsBase = !isRedisClient(target);
  // Only a template for the connections below; it never connects itself.
  const base: RedisClient = isRedisClient(target) ? target : createRedisTemplate(target);
  const own = (suffix: string, extra: { enableAutoPipelining?: boolean } = {}) => {
    const c = duplicateConnection(base, `${connectionName}:${suffix}`, extra);
    c.on("error", () => {});
    return c;
  };
  const redis = own("cmd", { enableAutoPipelining: true });
  const subscriber = own("sub");
  return {
    redis,
    subscriber,
    channelPrefix: base.options.keyPrefix ?? "",
    async close() {
      await Promise.allSettled([redis.quit(), subscriber.quit()]);
      if (ownsBase) base.disconnect();
    },
  };
}
