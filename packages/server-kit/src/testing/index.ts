// Test harness: every test file gets its own Postgres database and Redis key prefix, so files run
// in parallel against the machine's servers without seeing each other.
import { randomBytes } from "node:crypto";
import pg from "pg";

export const TEST_DATABASE_URL = process.env.CORRAL_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
export const TEST_REDIS_URL = process.env.CORRAL_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export interface TestDatabase {
  /** Connection string of the new database. */
  url: string;
  name: string;
  drop(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Creates an empty database `corral_t_<random>`; `drop()` removes it (forcing connections off). */
export async function createTestDatabase(label = "t"): Promise<TestDatabase> {
  const name = `corral_${label.replace(/[^a-z0-9_]/gi, "_").toLowerCase()}_${randomBytes(5).toString("hex")}`;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`create database "${name}"`);
  } finally {
    await admin.end();
  }
  let dropped = false;
  return {
    name,
    url: withDatabase(TEST_DATABASE_URL, name),
    async drop() {
      if (dropped) return;
      dropped = true;
      const c = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await c.connect();
      try {
        await c.query(`drop database if exists "${name}" with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** A key prefix no other test file uses, e.g. `t:3f9a1c:`. */
export function testRedisPrefix(label = "t"): string {
  return `test:${label}:${randomBytes(4).toString("hex")}:`;
}

export { startTestServer, TEST_SERVICE_KEY, type TestServer } from "./test-server.js";
export { envelope, sendRawHttp2, volatileHeaders, type RawAnswer } from "./raw-http2.js";

/** Deletes every key under `prefix` (a test's leftovers: attempt records live for days). */
export async function dropTestRedisPrefix(prefix: string, url = TEST_REDIS_URL): Promise<void> {
  if (!prefix) return;
  const { Redis } = await import("ioredis");
  const redis = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null, lazyConnect: true });
  redis.on("error", () => {});
  try {
    await redis.connect();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== "0");
  } catch {
    // The server is gone (a fault test's own Redis): nothing to clean.
  } finally {
    redis.disconnect();
  }
}
