// The default BlobStore: a blob row and its bytes in rows of (by default) 1 MiB, written as they
// arrive and read back one row at a time, so neither an upload nor a download holds a whole bundle
// in memory. The blob stays 'uploading' (never read or shared) until every byte matched; a failed
// upload deletes it, and one whose process died is left for `sweep`.
import { createHash } from "node:crypto";
import { sql, type Kysely } from "kysely";
import { BlobMismatchError, type BlobStore, type ExpectedBlob, type StoredBlob } from "../blob-store.js";
import { newId } from "../ids.js";
import type { RegistryDatabase } from "./database.js";

export const DEFAULT_BLOB_CHUNK_BYTES = 1024 * 1024;

const UNIQUE_VIOLATION = "23505";
const FOREIGN_KEY_VIOLATION = "23503";

function pgCode(err: unknown): string | undefined {
  return (err as { code?: string }).code;
}

export function createPostgresBlobStore(
  db: Kysely<RegistryDatabase>,
  options: { chunkBytes?: number } = {},
): BlobStore {
  const chunkBytes = options.chunkBytes ?? DEFAULT_BLOB_CHUNK_BYTES;

  async function findStored(teamId: string, digest: string): Promise<StoredBlob | undefined> {
    const row = await db
      .selectFrom("release_blobs")
      .select(["id", "digest", "size_bytes"])
      .where("team_id", "=", teamId)
      .where("digest", "=", digest)
      .where("state", "=", "stored")
      .executeTakeFirst();
    return row && { id: row.id, digest: row.digest, sizeBytes: Number(row.size_bytes) };
  }

  async function deleteBlob(blobId: string): Promise<boolean> {
    try {
      const result = await db
        .deleteFrom("release_blobs")
        .where("id", "=", blobId)
        .where(({ not, exists, selectFrom }) => not(exists(selectFrom("releases").select("id").whereRef("releases.blob_id", "=", "release_blobs.id"))))
        .executeTakeFirst();
      return result.numDeletedRows > 0n;
    } catch (err) {
      // A release took the blob while we deleted it: it stays.
      if (pgCode(err) === FOREIGN_KEY_VIOLATION) return false;
      throw err;
    }
  }

  /** Writes `chunks` under `blobId` in rows of `chunkBytes`; returns the byte count and sha256. */
  async function writeChunks(blobId: string, chunks: AsyncIterable<Uint8Array>, expected: ExpectedBlob, signal?: AbortSignal) {
    const hash = createHash("sha256");
    let total = 0;
    let seq = 0;
    let flushed = 0;
    // Rows are sized for what is still to come (within the expected size), so a small bundle
    // never takes a whole chunk of memory.
    const newRow = () => Buffer.allocUnsafe(Math.min(chunkBytes, Math.max(1, expected.sizeBytes - flushed)));
    let row = newRow();
    let filled = 0;
    const flush = async () => {
      await db.insertInto("release_blob_chunks").values({ blob_id: blobId, seq: seq++, data: row.subarray(0, filled) }).execute();
      flushed += filled;
      row = newRow();
      filled = 0;
    };
    for await (const chunk of chunks) {
      signal?.throwIfAborted();
      total += chunk.byteLength;
      if (total > expected.sizeBytes) {
        throw new BlobMismatchError("size_bytes", `the upload sent more than the header's ${expected.sizeBytes} bytes`);
      }
      hash.update(chunk);
      let offset = 0;
      while (offset < chunk.byteLength) {
        const n = Math.min(row.length - filled, chunk.byteLength - offset);
        row.set(chunk.subarray(offset, offset + n), filled);
        filled += n;
        offset += n;
        if (filled === row.length) await flush();
      }
    }
    signal?.throwIfAborted();
    if (filled > 0) await flush();
    return { total, digest: `sha256:${hash.digest("hex")}` };
  }

  return {
    async put(teamId, chunks, expected, signal) {
      const id = newId();
      await db
        .insertInto("release_blobs")
        .values({ id, team_id: teamId, digest: expected.digest, size_bytes: expected.sizeBytes, state: "uploading" })
        .execute();
      let kept = false;
      try {
        const { total, digest } = await writeChunks(id, chunks, expected, signal);
        if (total !== expected.sizeBytes) {
          throw new BlobMismatchError("size_bytes", `the upload ended after ${total} of the header's ${expected.sizeBytes} bytes`);
        }
        if (digest !== expected.digest) {
          throw new BlobMismatchError("digest", `the bytes that arrived hash to ${digest}, not ${expected.digest}`);
        }
        try {
          await db.updateTable("release_blobs").set({ state: "stored" }).where("id", "=", id).execute();
          kept = true;
          return { id, digest, sizeBytes: total };
        } catch (err) {
          if (pgCode(err) !== UNIQUE_VIOLATION) throw err;
          // The team stored these bytes before (or a concurrent upload just did): share that blob.
          const existing = await findStored(teamId, digest);
          if (!existing) throw err;
          return existing;
        }
      } finally {
        // Its chunks go with it (on delete cascade). Should this fail, `sweep` finds the row.
        if (!kept) await db.deleteFrom("release_blobs").where("id", "=", id).execute();
      }
    },

    async *get(blobId, signal) {
      for (let seq = 0; ; seq++) {
        signal?.throwIfAborted();
        const row = await db
          .selectFrom("release_blob_chunks")
          .select("data")
          .where("blob_id", "=", blobId)
          .where("seq", "=", seq)
          .executeTakeFirst();
        if (!row) return;
        yield row.data;
      }
    },

    delete: deleteBlob,

    async sweep(olderThanMs) {
      const cutoff = sql<Date>`now() - make_interval(secs => ${olderThanMs / 1000})`;
      const stale = await db
        .selectFrom("release_blobs")
        .select("id")
        .where("create_time", "<", cutoff)
        .where((eb) =>
          eb.or([
            eb("state", "=", "uploading"),
            eb.not(eb.exists(eb.selectFrom("releases").select("id").whereRef("releases.blob_id", "=", "release_blobs.id"))),
          ]),
        )
        .execute();
      let deleted = 0;
      for (const { id } of stale) if (await deleteBlob(id)) deleted++;
      return deleted;
    },
  };
}
