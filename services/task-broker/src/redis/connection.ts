// The broker's Redis is either one server (ioredis `Redis`) or a Redis Cluster (ioredis `Cluster`,
// seeded from `REDIS_CLUSTER_NODES`). The stores take either; the few places where the two differ
// (multi-slot pipelines, PUBLISH receiver counts) go through the helpers below.
import { ConfigError } from "@corral/server-kit";
import { Cluster, Redis, type ChainableCommander, type ClusterNode, type RedisOptions } from "ioredis";

export type RedisClient = Redis | Cluster;

export function isRedisClient(value: unknown): value is RedisClient {
  return value instanceof Redis || value instanceof Cluster;
}

export interface RedisTarget {
  /** A single server (`redis://` or `rediss://`); ignored when `clusterNodes` is given. */
  url: string;
  keyPrefix?: string;
  /** Seed nodes of a Redis Cluster; the rest of the cluster is discovered from them. */
  clusterNodes?: ClusterSeeds;
}

export interface ClusterSeeds {
  nodes: ClusterNode[];
  username?: string;
  password?: string;
  tls: boolean;
}

/**
 * Parses `REDIS_CLUSTER_NODES`: comma-separated `host:port` or `redis[s]://[user:password@]host:port`
 * entries. Credentials and TLS (`rediss://`) apply to every node; undefined when `text` is empty.
 */
export function parseClusterNodes(text: string | undefined, name = "REDIS_CLUSTER_NODES"): ClusterSeeds | undefined {
  const entries = (text ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (entries.length === 0) return undefined;
  const seeds: ClusterSeeds = { nodes: [], tls: false };
  for (const entry of entries) {
    let url: URL;
    try {
      url = new URL(entry.includes("://") ? entry : `redis://${entry}`);
    } catch {
      throw new ConfigError(`${name}: expected host:port or redis://host:port entries, got ${JSON.stringify(entry)}`);
    }
    if ((url.protocol !== "redis:" && url.protocol !== "rediss:") || !url.hostname) {
      throw new ConfigError(`${name}: expected host:port or redis://host:port entries, got ${JSON.stringify(entry)}`);
    }
    const port = url.port === "" ? 6379 : Number(url.port);
    seeds.nodes.push({ host: url.hostname.replace(/^\[(.*)\]$/, "$1"), port });
    if (url.protocol === "rediss:") seeds.tls = true;
    if (url.username) seeds.username = decodeURIComponent(url.username);
    if (url.password) seeds.password = decodeURIComponent(url.password);
  }
  return seeds;
}

const retryStrategy = (times: number) => Math.min(50 * times, 2_000);

/**
 * A connection template that never connects itself (lazy): the broker duplicates it per role.
 * On a cluster, XGROUP and XINFO stay out of auto-pipelines: ioredis does not know their key
 * position, so it sends them to any node and follows the MOVED answer, which only works for a
 * command sent on its own.
 */
export function createRedisTemplate(target: RedisTarget): RedisClient {
  const keyPrefix = target.keyPrefix ?? "";
  if (!target.clusterNodes) {
    return new Redis(target.url, { keyPrefix, lazyConnect: true, maxRetriesPerRequest: 20, retryStrategy });
  }
  const seeds = target.clusterNodes;
  const redisOptions: RedisOptions = { maxRetriesPerRequest: 20 };
  if (seeds.username) redisOptions.username = seeds.username;
  if (seeds.password) redisOptions.password = seeds.password;
  if (seeds.tls) redisOptions.tls = {};
  return new Cluster(seeds.nodes, {
    keyPrefix,
    lazyConnect: true,
    clusterRetryStrategy: retryStrategy,
    autoPipeliningIgnoredCommands: ["xgroup", "xinfo"],
    redisOptions,
  });
}

/** A new connection with the template's options, named `name`. */
export function duplicateConnection(
  template: RedisClient,
  name: string,
  extra: { enableAutoPipelining?: boolean } = {},
): RedisClient {
  if (template instanceof Cluster) {
    return template.duplicate([], {
      ...extra,
      redisOptions: { ...template.options.redisOptions, connectionName: name },
    });
  }
  return template.duplicate({ connectionName: name, ...extra });
}

/**
 * A pipeline for commands that may touch several slots. On one server it is an ordinary pipeline.
 * A cluster pipeline must stay within one node's slots, so on a cluster the commands are recorded
 * and sent each on its own at `exec()`: on an auto-pipelining connection ioredis still groups them
 * into one pipeline per node. Commands of different slots then carry no order between them; every
 * caller here issues independent commands.
 */
export function batch(redis: RedisClient): ChainableCommander {
  if (!(redis instanceof Cluster)) return redis.pipeline();
  const calls: Array<() => Promise<unknown>> = [];
  const commands = redis as unknown as Record<string | symbol, unknown>;
  const recorder: ChainableCommander = new Proxy({} as ChainableCommander, {
    get(_target, prop) {
      if (prop === "exec") {
        return () =>
          Promise.all(
            calls.map((send) =>
              send().then(
                (value): [Error | null, unknown] => [null, value],
                (err: unknown): [Error | null, unknown] => [err instanceof Error ? err : new Error(String(err)), null],
              ),
            ),
          );
      }
      if (prop === "length") return calls.length;
      const fn = commands[prop];
      if (prop === "then" || typeof fn !== "function") return undefined;
      return (...args: unknown[]) => {
        calls.push(() => (fn as (...a: unknown[]) => Promise<unknown>).apply(redis, args));
        return recorder;
      };
    },
  });
  return recorder;
}

/**
 * How many connections anywhere receive a PUBLISH on `channel`. On one server that is PUBLISH's own
 * answer (`published`); a cluster node answers only for its own subscribers while the message
 * reaches every node, so there the subscribers of every node are summed.
 */
export async function receiversOf(redis: RedisClient, channel: string, published: number): Promise<number> {
  if (!(redis instanceof Cluster)) return published;
  const counts = await Promise.all(
    redis.nodes("all").map(async (node) => {
      const reply = (await node.pubsub("NUMSUB", channel)) as Array<string | number>;
      return Number(reply[1] ?? 0);
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}
