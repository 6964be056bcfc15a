import { createHash, randomBytes } from "node:crypto";
import { createDatabase, migrateToLatest } from "@corral/server-kit";
import { createTestDatabase, type TestDatabase } from "@corral/server-kit/testing";
import { sql, type Kysely } from "kysely";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BlobMismatchError, type BlobStore } from "../blob-store.js";
import { createRegistry } from "../registry.js";
import type { RegistryDatabase } from "./database.js";
import { REGISTRY_SCHEMA, registryMigrations } from "./migrations/index.js";
import { createPostgresBlobStore } from "./postgres-blob-store.js";

const digestOf = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

async function* pieces(bytes: Uint8Array, size: number, failAt?: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) {
    if (failAt !== undefined && at >= failAt) throw new Error("the client went away");
    yield bytes.subarray(at, at + size);
  }
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<{ bytes: Buffer; chunks: number }> {
  const parts: Uint8Array[] = [];
  for await (const p of it) parts.push(p);
  return { bytes: Buffer.concat(parts), chunks: parts.length };
}

describe("the Postgres blob store", () => {
  let database: TestDatabase;
  let db: Kysely<RegistryDatabase>;
  let blobs: BlobStore;
  let teamId: string;

  const rows = async () => ({
    blobs: Number((await sql<{ n: string }>`select count(*)::text as n from release_blobs`.execute(db)).rows[0]!.n),
    chunks: Number((await sql<{ n: string }>`select count(*)::text as n from release_blob_chunks`.execute(db)).rows[0]!.n),
  });

  beforeAll(async () => {
    database = await createTestDatabase("registry_blobs");
    db = createDatabase<RegistryDatabase>({ url: database.url, schema: REGISTRY_SCHEMA });
    await migrateToLatest(db, REGISTRY_SCHEMA, registryMigrations);
    teamId = (await createRegistry({ db }).bootstrap("blobs")).teamId;
    // Small rows, so a few KiB cross many row boundaries.
    blobs = createPostgresBlobStore(db, { chunkBytes: 1000 });
  });
  beforeEach(async () => {
    await sql`delete from release_blobs`.execute(db);
  });
  afterAll(async () => {
    await db?.destroy();
    await database?.drop();
  });

  it("stores pieces of any size in rows of its chunk size and reads them back in order", async () => {
    const bytes = randomBytes(10_500);
    const stored = await blobs.put(teamId, pieces(bytes, 333), { digest: digestOf(bytes), sizeBytes: bytes.length });
    expect(stored).toMatchObject({ digest: digestOf(bytes), sizeBytes: 10_500 });
    expect(await rows()).toEqual({ blobs: 1, chunks: 11 });
    const back = await collect(blobs.get(stored.id));
    expect(back.chunks).toBe(11);
    expect(back.bytes.equals(bytes)).toBe(true);
  });

  it("keeps one blob per digest: a second put of the same bytes answers the first", async () => {
    const bytes = randomBytes(2_500);
    const first = await blobs.put(teamId, pieces(bytes, 1024), { digest: digestOf(bytes), sizeBytes: bytes.length });
    const second = await blobs.put(teamId, pieces(bytes, 700), { digest: digestOf(bytes), sizeBytes: bytes.length });
    expect(second.id).toBe(first.id);
    expect(await rows()).toEqual({ blobs: 1, chunks: 3 });
  });

  it("leaves no row after a digest mismatch, a short or long upload, or a source that fails", async () => {
    const bytes = randomBytes(5_000);
    const expected = { digest: digestOf(bytes), sizeBytes: bytes.length };
    await expect(blobs.put(teamId, pieces(bytes, 999), { ...expected, digest: digestOf(randomBytes(1)) })).rejects.toBeInstanceOf(BlobMismatchError);
    await expect(blobs.put(teamId, pieces(bytes.subarray(0, 4_000), 999), expected)).rejects.toBeInstanceOf(BlobMismatchError);
    await expect(blobs.put(teamId, pieces(bytes, 999), { ...expected, sizeBytes: 4_000 })).rejects.toBeInstanceOf(BlobMismatchError);
    await expect(blobs.put(teamId, pieces(bytes, 999, 3_000), expected)).rejects.toThrow("the client went away");
    const aborted = new AbortController();
    aborted.abort();
    await expect(blobs.put(teamId, pieces(bytes, 999), expected, aborted.signal)).rejects.toThrow();
    expect(await rows()).toEqual({ blobs: 0, chunks: 0 });
  });

  it("sweeps uploads a dead process left and stored blobs no release uses, once they are old enough", async () => {
    // What a process that died mid-upload leaves: an 'uploading' blob with some chunks.
    await sql`insert into release_blobs (id, team_id, digest, size_bytes, state, create_time)
              values ('00000000-0000-7000-8000-000000000001', ${teamId}, 'sha256:x', 10, 'uploading', now() - interval '2 hours')`.execute(db);
    await sql`insert into release_blob_chunks (blob_id, seq, data) values ('00000000-0000-7000-8000-000000000001', 0, '\\x00')`.execute(db);
    const bytes = randomBytes(100);
    const orphan = await blobs.put(teamId, pieces(bytes, 100), { digest: digestOf(bytes), sizeBytes: 100 });
    // Too young: kept (a publish may be about to name it).
    expect(await blobs.sweep(60 * 60_000)).toBe(1);
    expect(await rows()).toEqual({ blobs: 1, chunks: 1 });
    expect(await blobs.sweep(0)).toBe(1);
    expect(await rows()).toEqual({ blobs: 0, chunks: 0 });
    expect(await blobs.delete(orphan.id)).toBe(false);
  });
});
