// For this service's tests: a fresh database, migrations, the registry served over real HTTP/2
// with its own key verifier (so revocation is tested end to end), and two teams with a key each.
import type { DescService } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { createDatabase, createLogger, createServer, createServiceClient, migrateToLatest } from "@corral/server-kit";
import { createTestDatabase, TEST_SERVICE_KEY } from "@corral/server-kit/testing";
import { createRegistry, type Registry, type RegistryOptions } from "./registry.js";
import type { RegistryDatabase } from "./store/database.js";
import { REGISTRY_SCHEMA, registryMigrations } from "./store/migrations/index.js";

export interface Team {
  teamId: string;
  key: string;
}

export interface RegistryHarness {
  url: string;
  /** The test database's connection string (a second registry on it is another replica). */
  databaseUrl: string;
  db: Kysely<RegistryDatabase>;
  registry: Registry;
  teamA: Team;
  teamB: Team;
  /** A client calling as `key` (default: team A's). */
  client<S extends DescService>(service: S, key?: string): Client<S>;
  /**
   * Another registry process on the same database (its own pool, LISTEN connection and server),
   * as a second replica behind a load balancer would be.
   */
  startReplica(): Promise<{ url: string; client<S extends DescService>(service: S, key?: string): Client<S>; close(): Promise<void> }>;
  /** A client calling with the internal service key. */
  serviceClient<S extends DescService>(service: S): Client<S>;
  close(): Promise<void>;
}

export async function startRegistryHarness(
  label: string,
  options: Omit<RegistryOptions, "db"> = {},
): Promise<RegistryHarness> {
  const database = await createTestDatabase(label);
  const db = createDatabase<RegistryDatabase>({ url: database.url, schema: REGISTRY_SCHEMA, max: 20 });
  await migrateToLatest(db, REGISTRY_SCHEMA, registryMigrations);
  const registry = createRegistry({
    db,
    databaseUrl: database.url,
    ...options,
    ...(options.provisioning ? { provisioning: { databaseUrl: database.url, ...options.provisioning } } : {}),
  });
  if (options.provisioning) await registry.start();
  const server = createServer({
    name: `test-${label}`,
    mounts: registry.mounts,
    verifier: registry.verifier,
    serviceKey: TEST_SERVICE_KEY,
    port: 0,
    logger: createLogger(`test-${label}`, "silent"),
  });
  await server.listen();
  server.setServing(true);
  const replicas: Array<() => Promise<void>> = [];
  const teamA = await registry.bootstrap(`team-a-${label}`);
  const teamB = await registry.bootstrap(`team-b-${label}`);
  return {
    url: server.url,
    databaseUrl: database.url,
    db,
    registry,
    teamA,
    teamB,
    client: (service, key = teamA.key) => createServiceClient(service, { baseUrl: server.url, apiKey: key }),
    async startReplica() {
      const replicaDb = createDatabase<RegistryDatabase>({ url: database.url, schema: REGISTRY_SCHEMA, max: 5 });
      const replica = createRegistry({ db: replicaDb, databaseUrl: database.url, ...options });
      const replicaServer = createServer({
        name: `test-${label}-replica`,
        mounts: replica.mounts,
        verifier: replica.verifier,
        serviceKey: TEST_SERVICE_KEY,
        port: 0,
        logger: createLogger(`test-${label}-replica`, "silent"),
      });
      await replicaServer.listen();
      replicaServer.setServing(true);
      let closed: Promise<void> | undefined;
      const close = () =>
        (closed ??= (async () => {
          replica.drain();
          await replicaServer.close(1_000);
          await replica.close();
          await replicaDb.destroy();
        })());
      replicas.push(close);
      return {
        url: replicaServer.url,
        client: (service, key = teamA.key) => createServiceClient(service, { baseUrl: replicaServer.url, apiKey: key }),
        close,
      };
    },
    serviceClient: (service) => createServiceClient(service, { baseUrl: server.url, apiKey: TEST_SERVICE_KEY }),
    async close() {
      for (const closeReplica of replicas) await closeReplica();
      registry.drain();
      await server.close(1_000);
      await registry.close();
      await db.destroy();
      await database.drop();
    },
  };
}

/** The gRPC code a call failed with (undefined when it succeeded). */
export async function codeOf(call: Promise<unknown>): Promise<number | undefined> {
  try {
    await call;
    return undefined;
  } catch (err) {
    return (err as { code?: number }).code;
  }
}
