// Where release bundles live: one small interface (Postgres by default, postgres-blob-store.ts), so
// another backend (an object store) can take its place. Blobs are addressed by content: a team
// stores one blob per digest, and a put that does not match its expected size and digest leaves
// nothing behind.
import { InvalidArgumentError } from "@corral/server-kit";

export interface ExpectedBlob {
  /** "sha256:" and 64 lowercase hex digits. */
  digest: string;
  sizeBytes: number;
}

export interface StoredBlob {
  id: string;
  digest: string;
  sizeBytes: number;
}

export interface BlobStore {
  /**
   * Reads `chunks` to the end and stores them, verified against `expected`. Resolves with the
   * team's blob of that digest (an earlier one when the team already stored it). On a mismatch,
   * an error of `chunks` or an abort, nothing stays stored.
   */
  put(teamId: string, chunks: AsyncIterable<Uint8Array>, expected: ExpectedBlob, signal?: AbortSignal): Promise<StoredBlob>;
  /** The blob's bytes in order, one stored chunk at a time. */
  get(blobId: string, signal?: AbortSignal): AsyncIterable<Uint8Array>;
  /** Deletes a blob no release refers to; false when one still does (or it is gone). */
  delete(blobId: string): Promise<boolean>;
  /**
   * Deletes uploads older than `olderThanMs` that never finished (their process died) and stored
   * blobs that old no release refers to; returns how many.
   */
  sweep(olderThanMs: number): Promise<number>;
}

/** The bytes that arrived do not match what the upload's header promised. */
export class BlobMismatchError extends InvalidArgumentError {
  constructor(field: string, description: string) {
    super(field, description);
    this.name = "BlobMismatchError";
  }
}
