// A throwaway Redis Cluster for tests: `redis-server --cluster-enabled yes` processes on free ports
// in a temporary folder, joined with `redis-cli --cluster create`, stopped and removed afterwards.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { freePort } from "../../support/processes.js";

const run = promisify(execFile);

export interface ClusterNodeProcess {
  host: string;
  port: number;
  child: ChildProcess;
}

export interface TestRedisCluster {
  nodes: ClusterNodeProcess[];
  /** The value for REDIS_CLUSTER_NODES: every node as `host:port`. */
  seeds: string;
  /** `host:port` of the master serving `slot`. */
  masterOf(slot: number): Promise<string>;
  /** The hash slot of `key` (CLUSTER KEYSLOT). */
  keySlot(key: string): Promise<number>;
  /** A plain connection to one node (closed by `stop()`). */
  node(address: string): Redis;
  stop(): Promise<void>;
}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** Starts `masters` cluster-enabled servers (no replicas) and joins them into one cluster. */
export async function startRedisCluster(options: { masters?: number } = {}): Promise<TestRedisCluster> {
  const masters = options.masters ?? 3;
  const dir = await mkdtemp(join(tmpdir(), "corral-redis-cluster-"));
  const ports = await distinctFreePorts(masters * 2);
  const nodes: ClusterNodeProcess[] = [];
  const connections = new Map<string, Redis>();
  const node = (address: string) => {
    let c = connections.get(address);
    if (!c) {
      const [host, port] = address.split(":");
      c = new Redis({ host, port: Number(port), lazyConnect: false, maxRetriesPerRequest: 3 });
      c.on("error", () => {});
      connections.set(address, c);
    }
    return c;
  };

  const stop = async () => {
    await Promise.allSettled([...connections.values()].map((c) => c.quit()));
    await Promise.all(
      nodes.map(
        (n) =>
          new Promise<void>((resolve) => {
            if (n.child.exitCode !== null || n.child.signalCode !== null) return resolve();
            n.child.once("exit", () => resolve());
            n.child.kill("SIGTERM");
            setTimeout(() => n.child.kill("SIGKILL"), 5_000).unref();
          }),
      ),
    );
    await rm(dir, { recursive: true, force: true });
  };

  try {
    for (let i = 0; i < masters; i++) {
      const port = ports[2 * i]!;
      const child = spawn(
        "redis-server",
        [
          "--port", String(port),
          "--cluster-port", String(ports[2 * i + 1]),
          "--cluster-enabled", "yes",
          "--cluster-config-file", join(dir, `nodes-${port}.conf`),
          "--cluster-node-timeout", "5000",
          "--dir", dir,
          "--bind", "127.0.0.1",
          "--save", "",
          "--appendonly", "no",
          "--loglevel", "warning",
        ],
        { stdio: "ignore" },
      );
      nodes.push({ host: "127.0.0.1", port, child });
    }
    const addresses = nodes.map((n) => `${n.host}:${n.port}`);
    for (const a of addresses) await until(`${a} to answer`, async () => ((await node(a).ping()) === "PONG" ? true : undefined));
    await run("redis-cli", ["--cluster", "create", ...addresses, "--cluster-yes"], { timeout: 30_000 });
    for (const a of addresses) {
      await until(`${a} to see the whole cluster`, async () => {
        const info = String(await node(a).cluster("INFO"));
        return info.includes("cluster_state:ok") && info.includes("cluster_slots_ok:16384") && info.includes(`cluster_known_nodes:${masters}`)
          ? true
          : undefined;
      });
    }
    return {
      nodes,
      seeds: addresses.join(","),
      async masterOf(slot) {
        const ranges = await node(addresses[0]!).cluster("SLOTS");
        const range = ranges.find(([from, to]) => slot >= from && slot <= to);
        const master = range?.[2];
        if (!master) throw new Error(`no master serves slot ${slot}`);
        return `${master[0]}:${master[1]}`;
      },
      async keySlot(key) {
        return Number(await node(addresses[0]!).cluster("KEYSLOT", key));
      },
      node,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
