import { createDatabase, migrateToLatest } from "@corral/server-kit";
import { createTestDatabase, type TestDatabase } from "@corral/server-kit/testing";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REGISTRY_SCHEMA, registryMigrations, type RegistryDatabase } from "../../index.js";

describe("registry migrations", () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase("registry_migrations");
  });
  afterAll(() => database?.drop());

  it("run from two processes at once, then again, without harm", async () => {
    const first = createDatabase<RegistryDatabase>({ url: database.url, schema: REGISTRY_SCHEMA });
    const second = createDatabase<RegistryDatabase>({ url: database.url, schema: REGISTRY_SCHEMA });
    try {
      const [a, b] = await Promise.all([
        migrateToLatest(first, REGISTRY_SCHEMA, registryMigrations),
        migrateToLatest(second, REGISTRY_SCHEMA, registryMigrations),
      ]);
      // Each migration ran exactly once, in one of the two callers.
      expect([...a, ...b].sort()).toEqual(Object.keys(registryMigrations).sort());
      expect(await migrateToLatest(first, REGISTRY_SCHEMA, registryMigrations)).toEqual([]);

      const tables = await sql<{ table_name: string }>`
        select table_name from information_schema.tables where table_schema = ${REGISTRY_SCHEMA} order by table_name`.execute(first);
      expect(tables.rows.map((r) => r.table_name)).toEqual(
        expect.arrayContaining(["api_keys", "clusters", "configurations", "hardware", "locations", "nodes", "teams"]),
      );
      const builtins = await first.selectFrom("configurations").select("name").where("team_id", "is", null).execute();
      expect(builtins.map((r) => r.name)).toEqual(["corral/default"]);
    } finally {
      await first.destroy();
      await second.destroy();
    }
  });
});
