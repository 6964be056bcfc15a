// Postgres through kysely: one pool per process, one schema per service, migrations on start.
import { Kysely, Migrator, PostgresDialect, sql, type Migration, type MigrationProvider } from "kysely";
import { createHash } from "node:crypto";
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

/**
 * A statement whose text begins with this comment is prepared once per connection and then only
 * bound and executed: Postgres parses and analyses it once instead of on every call. For hot
 * statements whose text never changes (the variable parts are parameters, lists are arrays for
 * `unnest` or `= any`); a statement built from optional fragments must not carry it, since each
 * distinct text stays prepared on every pooled connection. It names its result columns: with `*`,
 * a migration that adds a column (run by another replica during a rolling upgrade) makes Postgres
 * refuse the prepared statement ("cached plan must not change result type"). Measured on a one-task submission
 * (a five-part insert): 0.74-0.83 ms → 0.47-0.50 ms p50.
 */
export const PREPARED = "/* prepared */";

const statementNames = new Map<string, string>();

/** A stable name per statement text (pg keeps one prepared statement per name and connection). */
export function preparedStatementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `corral_${createHash("sha256").update(text).digest("base64url").slice(0, 24)}`;
    if (statementNames.size < 1_000) statementNames.set(text, name);
  }
  return name;
}

type QueryFn = (config: unknown, values?: unknown, callback?: unknown) => unknown;

/** Year 1 to 9999: the dates `toISOString` writes in a form Postgres reads. */
const isoFirst = new Date("0001-01-01T00:00:00.000Z").getTime();
const isoLast = new Date("9999-12-31T23:59:59.999Z").getTime();

function isoDate(d: Date): Date | string {
  const t = d.getTime();
  return t >= isoFirst && t <= isoLast ? d.toISOString() : d;
}

/**
 * Dates as ISO 8601 text (UTC), alone or in arrays: the same instants node-postgres would send,
 * written by the runtime instead of its per-field local-time formatting, which was the largest
 * single cost of job-service's batch statements (four timestamp arrays per result batch).
 * Dates outside years 1-9999 (and invalid ones) are left to node-postgres.
 *
 * Arrays become their Postgres array literal here (arrayLiteral): the text node-postgres writes
 * for them, without its two regular-expression passes per string (a submission of 10,000 tasks
 * sends 26 arrays of 10,000). An array holding anything else is left to node-postgres.
 */
export function paramsAsText(values: unknown): unknown {
  if (!Array.isArray(values)) return values;
  let out: unknown[] | undefined;
  for (let i = 0; i < values.length; i++) {
    const v: unknown = values[i];
    let mapped = v;
    if (v instanceof Date) mapped = isoDate(v);
    else if (Array.isArray(v)) mapped = arrayLiteral(v) ?? (v.some((e) => e instanceof Date) ? v.map((e: unknown) => (e instanceof Date ? isoDate(e) : e)) : v);
    if (mapped !== v) (out ??= [...values])[i] = mapped;
  }
  return out ?? values;
}

/**
 * The Postgres array literal node-postgres writes for `values` (every element quoted, `NULL` for
 * null and undefined, bytes as `\\x` hex, nested arrays as sub-arrays), dates as ISO 8601 text;
 * undefined when an element is of another kind (an object, a date outside years 1-9999), which
 * node-postgres then converts itself.
 */
export function arrayLiteral(values: readonly unknown[]): string | undefined {
  let out = "{";
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ",";
    const v: unknown = values[i];
    if (v === null || v === undefined) out += "NULL";
    else if (typeof v === "string") out += quoteElement(v);
    else if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") out += quoteElement(v.toString());
    else if (v instanceof Date) {
      const text = isoDate(v);
      if (typeof text !== "string") return undefined;
      out += quoteElement(text);
    } else if (ArrayBuffer.isView(v)) {
      out += "\\\\x" + Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex");
    } else if (Array.isArray(v)) {
      const inner = arrayLiteral(v);
      if (inner === undefined) return undefined;
      out += inner;
    } else return undefined;
  }
  return out + "}";
}

/** An element in double quotes, a backslash or quote in it escaped (node-postgres' escapeElement). */
function quoteElement(text: string): string {
  if (text.indexOf("\\") === -1 && text.indexOf('"') === -1) return '"' + text + '"';
  return '"' + text.replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"';
}

/**
 * Sends the statements marked PREPARED of a pooled client as named (prepared) statements, and
 * every statement's dates and arrays as text (paramsAsText).
 */
function prepareMarkedStatements(client: pg.PoolClient): void {
  const query = client.query.bind(client) as QueryFn;
  (client as unknown as { query: QueryFn }).query = (config, values, callback) => {
    if (typeof config === "string" && typeof values !== "function") {
      values = paramsAsText(values);
      if (config.startsWith(PREPARED)) return query({ name: preparedStatementName(config), text: config, values }, callback);
    }
    return query(config, values, callback);
  };
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
  pool.on("connect", (client) => {
    client.on("error", () => {});
    prepareMarkedStatements(client);
  });
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
