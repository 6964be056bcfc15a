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
  /** For a second replica over the same database. */
  databaseUrl: string;
  db: Kysely<RegistryDatabase>;
  registry: Registry;
  teamA: Team;
  teamB: Team;
  /** A client calling as `key` (default: team A's). */
  client<S extends DescService>(service: S, key?: string): Client<S>;
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
    serviceClient: (service) => createServiceClient(service, { baseUrl: server.url, apiKey: TEST_SERVICE_KEY }),
    async close() {
      await registry.close();
      await server.close(1_000);
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
