// Releases of a team: immutable, content-addressed bundles of task code by name and version.
// Publishing stores the bundle first (verified against its header) and then names it in one
// insert, so a release is visible only with every byte of its bundle behind it.
import type { Kysely } from "kysely";
import {
  AlreadyExistsError,
  decodePageToken,
  DomainError,
  encodePageToken,
  FailedPreconditionError,
  NotFoundError,
  pageSize,
  ResourceExhaustedError,
  type Page,
} from "@corral/server-kit";
import { Code } from "@connectrpc/connect";
import type { BlobStore } from "./blob-store.js";
import { newId } from "./ids.js";
import { versionKey } from "./release-version.js";
import type { RegistryDatabase, StoredManifest } from "./store/database.js";
import {
  deleteRelease,
  findNewestRelease,
  findRelease,
  insertRelease,
  listReleases,
  type ReleaseCursor,
  type ReleaseRecord,
} from "./store/release-repository.js";

export const DEFAULT_MAX_RELEASE_BYTES = 50 * 1024 * 1024;

export interface PublishInput {
  name: string;
  version: string;
  digest: string;
  sizeBytes: number;
  manifest: StoredManifest;
}

export interface Releases {
  /** Stores `chunks` as the bundle of `input`; `created` is false when this exact release exists. */
  publish(
    teamId: string,
    input: PublishInput,
    chunks: AsyncIterable<Uint8Array>,
    signal?: AbortSignal,
  ): Promise<{ release: ReleaseRecord; created: boolean }>;
  /** An empty version is the name's newest. */
  get(teamId: string, name: string, version: string): Promise<ReleaseRecord>;
  list(teamId: string, name: string, pageSize: number, pageToken: string): Promise<Page<ReleaseRecord>>;
  /** The release, then its bundle's bytes. */
  download(teamId: string, name: string, version: string, signal?: AbortSignal): Promise<{ release: ReleaseRecord; bytes: AsyncIterable<Uint8Array> }>;
  delete(teamId: string, name: string, version: string): Promise<void>;
}

export interface ReleasesOptions {
  /** Largest bundle accepted (CORRAL_MAX_RELEASE_BYTES, default 50 MiB). */
  maxReleaseBytes?: number;
  /** Uploads one team may have in progress on this process at once (default 4). */
  maxUploadsPerTeam?: number;
}

/** How long a team over its upload cap is told to wait. */
const UPLOAD_RETRY_AFTER_MS = 1_000;

const FOREIGN_KEY_VIOLATION = "23503";

function releaseId(name: string, version: string): string {
  return `${name}@${version}`;
}

function sameRelease(existing: ReleaseRecord, input: PublishInput): { release: ReleaseRecord; created: boolean } {
  if (existing.digest === input.digest) return { release: existing, created: false };
  throw new AlreadyExistsError(
    `release ${releaseId(input.name, input.version)} exists with other content (${existing.digest}); a published version never changes: publish a new version`,
  );
}

function isCursor(value: unknown): value is ReleaseCursor {
  const c = value as ReleaseCursor;
  return typeof c === "object" && c !== null && typeof c.name === "string" && typeof c.versionKey === "string" && typeof c.version === "string";
}

function parseCursor(token: string): ReleaseCursor | undefined {
  const text = decodePageToken(token, (key) => {
    try {
      return isCursor(JSON.parse(key));
    } catch {
      return false;
    }
  });
  return text === undefined ? undefined : (JSON.parse(text) as ReleaseCursor);
}

export function createReleases(db: Kysely<RegistryDatabase>, blobs: BlobStore, options: ReleasesOptions = {}): Releases {
  const maxBytes = options.maxReleaseBytes ?? DEFAULT_MAX_RELEASE_BYTES;
  const maxUploads = options.maxUploadsPerTeam ?? 4;
  // Each upload holds a row of memory and writes as its client sends: one team's many slow
  // uploads must not crowd out another's.
  const uploading = new Map<string, number>();

  async function find(teamId: string, name: string, version: string): Promise<ReleaseRecord> {
    const found = version === "" ? await findNewestRelease(db, teamId, name) : await findRelease(db, teamId, name, version);
    if (!found) throw new NotFoundError("release", version === "" ? name : releaseId(name, version));
    return found;
  }

  return {
    async publish(teamId, input, chunks, signal) {
      if (input.sizeBytes > maxBytes) {
        throw new ResourceExhaustedError(
          `release bundle of ${input.sizeBytes} bytes is over the limit of ${maxBytes} bytes (CORRAL_MAX_RELEASE_BYTES)`,
        );
      }
      // Answer before the upload when the outcome is already known.
      const before = await findRelease(db, teamId, input.name, input.version);
      if (before) return sameRelease(before, input);

      const inFlight = uploading.get(teamId) ?? 0;
      if (inFlight >= maxUploads) {
        throw new ResourceExhaustedError(`the team has ${inFlight} release uploads in progress, the most at once; retry when one ends`, {
          retryAfterMs: UPLOAD_RETRY_AFTER_MS,
        });
      }
      uploading.set(teamId, inFlight + 1);
      let blob;
      try {
        blob = await blobs.put(teamId, chunks, { digest: input.digest, sizeBytes: input.sizeBytes }, signal);
      } finally {
        const left = (uploading.get(teamId) ?? 1) - 1;
        if (left > 0) uploading.set(teamId, left);
        else uploading.delete(teamId);
      }
      let inserted: ReleaseRecord | undefined;
      try {
        inserted = await insertRelease(db, {
          id: newId(),
          teamId,
          name: input.name,
          version: input.version,
          versionKey: versionKey(input.version),
          digest: blob.digest,
          sizeBytes: blob.sizeBytes,
          blobId: blob.id,
          manifest: input.manifest,
        });
      } catch (err) {
        if ((err as { code?: string }).code !== FOREIGN_KEY_VIOLATION) throw err;
        // The stored blob this upload matched was swept between the two steps.
        throw new DomainError(Code.Aborted, "the release's bundle was removed while publishing; publish again", { cause: err });
      }
      if (inserted) return { release: inserted, created: true };
      // Someone published this name and version while the bytes arrived.
      const winner = await findRelease(db, teamId, input.name, input.version);
      await blobs.delete(blob.id);
      if (!winner) throw new DomainError(Code.Aborted, "the release changed while publishing; publish again");
      return sameRelease(winner, input);
    },

    get: find,

    async list(teamId, name, requested, pageToken) {
      const limit = pageSize(requested);
      const rows = await listReleases(db, teamId, name === "" ? undefined : name, parseCursor(pageToken), limit + 1);
      return page(rows, limit);
    },

    async download(teamId, name, version, signal) {
      const release = await find(teamId, name, version);
      return { release, bytes: blobs.get(release.blobId, signal) };
    },

    async delete(teamId, name, version) {
      const release = await find(teamId, name, version);
      if (release.deployedTo.length > 0) {
        throw new FailedPreconditionError(
          `release ${releaseId(name, version)} is deployed to ${release.deployedTo.join(", ")}; undeploy it first`,
        );
      }
      try {
        if (!(await deleteRelease(db, teamId, release.id))) throw new NotFoundError("release", releaseId(name, version));
      } catch (err) {
        if ((err as { code?: string }).code !== FOREIGN_KEY_VIOLATION) throw err;
        throw new FailedPreconditionError(`release ${releaseId(name, version)} was just deployed; undeploy it first`, { cause: err });
      }
      // Other versions may share the bytes; the blob goes only when none does.
      await blobs.delete(release.blobId);
    },
  };

  function page(rows: Array<ReleaseRecord & { versionKey: string }>, limit: number): Page<ReleaseRecord> {
    const strip = ({ versionKey: _key, ...r }: ReleaseRecord & { versionKey: string }): ReleaseRecord => r;
    if (rows.length <= limit) return { items: rows.map(strip), nextPageToken: "" };
    const items = rows.slice(0, limit);
    const last = items[items.length - 1]!;
    const cursor: ReleaseCursor = { name: last.name, versionKey: last.versionKey, version: last.version };
    return { items: items.map(strip), nextPageToken: encodePageToken(JSON.stringify(cursor)) };
  }
}
