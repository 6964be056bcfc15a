// The three services as separate processes on one test database and Redis key prefix, with a
// bootstrapped team and API key.
import { createDatabase, type ServiceConfig } from "@corral/server-kit";
import { createTestDatabase, dropTestRedisPrefix, testRedisPrefix, TEST_REDIS_URL, type TestDatabase } from "@corral/server-kit/testing";
import { createRegistry, REGISTRY_SCHEMA, type RegistryDatabase } from "@corral/cluster-registry";
import { freePort, randomServiceKey, spawnService, type ServiceProcess } from "./processes.js";

export interface Suite {
  registry: ServiceProcess;
  jobs: ServiceProcess;
  broker: ServiceProcess;
  database: TestDatabase;
  redisPrefix: string;
  serviceKey: string;
  env: Record<string, string>;
  /** A team's API key, created through the registry's bootstrap path. */
  apiKey: string;
  teamId: string;
  /** Creates another team with its own key. */
  newTeam(name: string): Promise<{ teamId: string; key: string }>;
  stop(): Promise<void>;
}

export interface SuiteOptions {
  label: string;
  env?: Record<string, string>;
  services?: Array<"registry" | "jobs" | "broker">;
  /**
   * The three services in one process on one port, as `corral dev` runs them (their calls to
   * each other still go over HTTP/2): `registry`, `jobs` and `broker` are then the same process.
   */
  oneProcess?: boolean;
}

export async function startSuite(options: SuiteOptions): Promise<Suite> {
  const database = await createTestDatabase(options.label);
  const redisPrefix = testRedisPrefix(options.label);
  const serviceKey = randomServiceKey();
  const [registryPort, jobsPort, brokerPort] = [await freePort(), await freePort(), await freePort()];
  const env: Record<string, string> = {
    DATABASE_URL: database.url,
    REDIS_URL: TEST_REDIS_URL,
    CORRAL_REDIS_PREFIX: redisPrefix,
    CORRAL_SERVICE_KEY: serviceKey,
    CORRAL_REGISTRY_URL: `http://127.0.0.1:${registryPort}`,
    CORRAL_JOBS_URL: `http://127.0.0.1:${jobsPort}`,
    CORRAL_BROKER_URL: `http://127.0.0.1:${brokerPort}`,
    CORRAL_SHUTDOWN_GRACE: "2s",
    ...options.env,
  };
  const started: ServiceProcess[] = [];
  if (options.oneProcess) {
    for (const k of ["CORRAL_REGISTRY_URL", "CORRAL_JOBS_URL", "CORRAL_BROKER_URL"]) env[k] = `http://127.0.0.1:${registryPort}`;
  }
  try {
    let registry: ServiceProcess, jobs: ServiceProcess, broker: ServiceProcess;
    if (options.oneProcess) {
      registry = jobs = broker = await spawnService({ name: "corral", entry: "test/support/one-process-main.ts", env, port: registryPort });
      started.push(registry);
    } else {
      registry = await spawnService({ name: "cluster-registry", entry: "services/cluster-registry/src/main.ts", env, port: registryPort });
      started.push(registry);
      [jobs, broker] = await Promise.all([
        spawnService({ name: "job-service", entry: "services/job-service/src/main.ts", env, port: jobsPort }),
        spawnService({ name: "task-broker", entry: "services/task-broker/src/main.ts", env, port: brokerPort }),
      ]);
      started.push(jobs, broker);
    }
    const db = createDatabase<RegistryDatabase>({ url: database.url, schema: REGISTRY_SCHEMA, max: 2 });
    const admin = createRegistry({ db });
    const first = await admin.bootstrap("team-a");
    return {
      registry,
      jobs,
      broker,
      database,
      redisPrefix,
      serviceKey,
      env,
      apiKey: first.key,
      teamId: first.teamId,
      newTeam: (name) => admin.bootstrap(name),
      async stop() {
        await Promise.all(started.map((p) => p.stop(5_000)));
        await db.destroy();
        await database.drop();
        await dropTestRedisPrefix(redisPrefix, env.REDIS_URL);
      },
    };
  } catch (err) {
    await Promise.all(started.map((p) => p.stop(2_000)));
    await database.drop();
    throw err;
  }
}

export type { ServiceConfig };
