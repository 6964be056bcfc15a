// Several replicas of each service as separate processes on one database, Redis key prefix and
// service key, behind one HTTP/2 balancer that clients, runners and the services themselves
// (CORRAL_REGISTRY_URL, CORRAL_JOBS_URL, CORRAL_BROKER_URL) call. A replica can be stopped and
// started again on its port. With `wiring: "paired"` the services skip the balancer: replica i of
// a service calls replica i (modulo the count) of each other service directly, as the benchmark
// wants (the balancer is an extra hop in the measuring process); clients then pick replicas' URLs.
import { createDatabase } from "@corral/server-kit";
import { createTestDatabase, dropTestRedisPrefix, testRedisPrefix, TEST_REDIS_URL, type TestDatabase } from "@corral/server-kit/testing";
import { createRegistry, REGISTRY_SCHEMA, type RegistryDatabase } from "@corral/cluster-registry";
import { freePort, randomServiceKey, spawnService, type ServiceProcess } from "../../support/processes.js";
import { startBalancer, type Balancer } from "./h2-balancer.js";

export type ServiceName = "registry" | "jobs" | "broker";

const services: Record<ServiceName, { folder: string; prefix: string }> = {
  registry: { folder: "cluster-registry", prefix: "/corral.registry." },
  jobs: { folder: "job-service", prefix: "/corral.jobs." },
  broker: { folder: "task-broker", prefix: "/corral.broker." },
};

export interface Replica {
  /** `registry-1`, `broker-2`, ... (brokers also use it as CORRAL_BROKER_ID). */
  name: string;
  service: ServiceName;
  port: number;
  url: string;
  process: ServiceProcess | undefined;
}

export interface ReplicatedSuite {
  balancer: Balancer;
  database: TestDatabase;
  redisPrefix: string;
  serviceKey: string;
  apiKey: string;
  teamId: string;
  replicas: Record<ServiceName, Replica[]>;
  /** SIGTERM and wait for the exit (the service drains first). */
  stopReplica(replica: Replica): Promise<void>;
  /** Starts the replica again on its port; resolves once it serves. */
  startReplica(replica: Replica): Promise<void>;
  stop(): Promise<void>;
}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** Where replica `r` calls the other services: replica i of each (modulo its count), no balancer. */
function pairedUrls(r: Replica, replicas: Record<ServiceName, Replica[]>): Record<string, string> {
  const index = replicas[r.service].indexOf(r);
  const pick = (s: ServiceName) => replicas[s][index % replicas[s].length]!.url;
  return { CORRAL_REGISTRY_URL: pick("registry"), CORRAL_JOBS_URL: pick("jobs"), CORRAL_BROKER_URL: pick("broker") };
}

export async function startReplicatedSuite(options: {
  label: string;
  /** Replicas of every service (2 by default); `counts` overrides it per service. */
  replicas?: number;
  counts?: Partial<Record<ServiceName, number>>;
  /** How the services call each other: through the balancer (default) or replica to replica. */
  wiring?: "balancer" | "paired";
  env?: Record<string, string>;
}): Promise<ReplicatedSuite> {
  const names = Object.keys(services) as ServiceName[];
  const counts = names.map((s) => options.counts?.[s] ?? options.replicas ?? 2);
  const database = await createTestDatabase(options.label);
  const redisPrefix = testRedisPrefix(options.label);
  const serviceKey = randomServiceKey();
  const ports = await distinctFreePorts(counts.reduce((a, b) => a + b, 0));
  const replicas = {} as Record<ServiceName, Replica[]>;
  names.forEach((service, s) => {
    const first = counts.slice(0, s).reduce((a, b) => a + b, 0);
    replicas[service] = Array.from({ length: counts[s]! }, (_, i) => {
      const port = ports[first + i]!;
      return { name: `${service}-${i + 1}`, service, port, url: `http://127.0.0.1:${port}`, process: undefined };
    });
  });
  const balancer = await startBalancer(
    (Object.keys(services) as ServiceName[]).map((s) => ({ prefix: services[s].prefix, backends: replicas[s].map((r) => r.url) })),
  );
  const env: Record<string, string> = {
    DATABASE_URL: database.url,
    REDIS_URL: TEST_REDIS_URL,
    CORRAL_REDIS_PREFIX: redisPrefix,
    CORRAL_SERVICE_KEY: serviceKey,
    CORRAL_REGISTRY_URL: balancer.url,
    CORRAL_JOBS_URL: balancer.url,
    CORRAL_BROKER_URL: balancer.url,
    CORRAL_SHUTDOWN_GRACE: "3s",
    ...options.env,
  };

  async function startReplica(r: Replica): Promise<void> {
    const wired = options.wiring === "paired" ? { ...env, ...pairedUrls(r, replicas) } : env;
    r.process = await spawnService({
      name: r.name,
      entry: `services/${services[r.service].folder}/src/main.ts`,
      env: r.service === "broker" ? { ...wired, CORRAL_BROKER_ID: r.name } : wired,
      port: r.port,
    });
  }
  async function stopReplica(r: Replica): Promise<void> {
    await r.process?.stop(15_000);
    r.process = undefined;
  }
  const all = () => Object.values(replicas).flat();
  const stopAll = async () => {
    await Promise.allSettled(all().map((r) => stopReplica(r)));
    await balancer.close();
  };

  try {
    // The first replica of each service migrates its schema; the others start once it is there.
    await startReplica(replicas.registry[0]!);
    await Promise.all([startReplica(replicas.jobs[0]!), startReplica(replicas.broker[0]!)]);
    await Promise.all(all().filter((r) => !r.process).map((r) => startReplica(r)));
    const db = createDatabase<RegistryDatabase>({ url: database.url, schema: REGISTRY_SCHEMA, max: 2 });
    let team: { teamId: string; key: string };
    try {
      team = await createRegistry({ db }).bootstrap("team-scale");
    } finally {
      await db.destroy();
    }
    return {
      balancer,
      database,
      redisPrefix,
      serviceKey,
      apiKey: team.key,
      teamId: team.teamId,
      replicas,
      stopReplica,
      startReplica,
      async stop() {
        await stopAll();
        await database.drop();
        await dropTestRedisPrefix(redisPrefix);
      },
    };
  } catch (err) {
    await stopAll();
    await database.drop();
    throw err;
  }
}
