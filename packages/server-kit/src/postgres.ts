// Postgres through kysely: one pool per process, one schema per service, migrations on start.
import { Kysely, Migrator, PostgresDialect, sql, type Migration, type MigrationProvider } from "kysely";
import pg from "pg";

// int8 as JS number for counts and sums; ids are strings (UUIDv7) so nothing large is lost.
pg.types.setTypeParser(20, (v) => Number(v));
pg.types.setTypeParser(1700, (v) => Number(v));

export interface DatabaseOptions {
  url: string;
  /** The service's schema; created when missing and first on the search path. */
  schema: string;
  max?: number;
  applicationName?: string;
}

export function createDatabase<DB>(options: DatabaseOptions): Kysely<DB> {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.max ?? 10,
    application_name: options.applicationName ?? options.schema,
    options: `-c search_path=${options.schema},public`,
    connectionTimeoutMillis: 10_000,
  });
  // A dropped idle connection must not crash the process; the pool replaces it.
  pool.on("error", () => {});
  // A connection that dies while checked out (inside a transaction, between two statements) emits
  // 'error' with no pool listener attached: without one of its own, that crashes the process. The
  // statement in flight fails on its own, and the pool discards the broken client on release.
  pool.on("connect", (client) => client.on("error", () => {}));
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
}

class RecordMigrationProvider implements MigrationProvider {
  constructor(private readonly migrations: Record<string, Migration>) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return this.migrations;
  }
}

/**
 * Runs the migrations (named so they sort, e.g. `0001_create_clusters`) into `schema`.
 * Kysely's migrator takes a lock, so two processes starting at once apply each migration once.
 */
export async function migrateToLatest(
  db: Kysely<any>,
  schema: string,
  migrations: Record<string, Migration>,
): Promise<string[]> {
  await sql`create schema if not exists ${sql.id(schema)}`.execute(db).catch(async (err: unknown) => {
    // Two processes creating the schema at once: one wins, the other sees a unique violation.
    if ((err as { code?: string }).code !== "23505") throw err;
  });
  const migrator = new Migrator({
    db,
    provider: new RecordMigrationProvider(migrations),
    migrationTableSchema: schema,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw new Error(`migrations of schema ${schema} failed`, { cause: error });
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}

/** Answers when the database does; used by health checks. */
export async function pingDatabase(db: Kysely<any>): Promise<void> {
  await sql`select 1`.execute(db);
}
