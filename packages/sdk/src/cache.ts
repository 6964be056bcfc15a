// The job cache: bytes by key, scoped to one job, so the tasks of a job can hand data to each
// other on runners that share a backend (one process, or one filesystem).
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createHash, randomUUID } from "node:crypto";
import { ValidationError } from "./errors.js";

/** A storage backend shared by all jobs; each job sees its own `JobCache` view of it. */
export interface CacheBackend {
  get(jobId: string, key: string): Promise<Uint8Array | undefined>;
  put(jobId: string, key: string, value: Uint8Array): Promise<void>;
  delete(jobId: string, key: string): Promise<void>;
}

/** The cache as a task sees it (`ctx.cache`): keys are scoped to the task's job. */
export interface JobCache {
  get(key: string): Promise<Uint8Array | undefined>;
  /** Strings are stored as UTF-8. */
  put(key: string, value: Uint8Array | string): Promise<void>;
  delete(key: string): Promise<void>;
  /** The value decoded as UTF-8, or undefined. */
  getText(key: string): Promise<string | undefined>;
}

function checkKey(key: string): void {
  if (key.length === 0 || key.length > 512) throw ValidationError.field("key", "must be 1-512 characters");
}

export function createJobCache(backend: CacheBackend, jobId: string): JobCache {
  return {
    async get(key) {
      checkKey(key);
      return backend.get(jobId, key);
    },
    async put(key, value) {
      checkKey(key);
      await backend.put(jobId, key, typeof value === "string" ? new TextEncoder().encode(value) : value);
    },
    async delete(key) {
      checkKey(key);
      await backend.delete(jobId, key);
    },
    async getText(key) {
      checkKey(key);
      const bytes = await backend.get(jobId, key);
      return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
    },
  };
}

/** Keeps entries in this process's memory: for tests and single-runner setups. */
export class InMemoryCache implements CacheBackend {
  readonly #entries = new Map<string, Map<string, Uint8Array>>();

  async get(jobId: string, key: string): Promise<Uint8Array | undefined> {
    const value = this.#entries.get(jobId)?.get(key);
    return value === undefined ? undefined : value.slice();
  }

  async put(jobId: string, key: string, value: Uint8Array): Promise<void> {
    let job = this.#entries.get(jobId);
    if (!job) this.#entries.set(jobId, (job = new Map()));
    job.set(key, value.slice());
  }

  async delete(jobId: string, key: string): Promise<void> {
    this.#entries.get(jobId)?.delete(key);
  }

  /** Forgets every entry of a job. */
  clearJob(jobId: string): void {
    this.#entries.delete(jobId);
  }
}

/**
 * Keeps entries as files under `dir/<job id>/`, so runners on one machine (or on a shared
 * filesystem) share them. Keys are percent-encoded into file names; writes are atomic.
 */
export class LocalFileCache implements CacheBackend {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  #path(jobId: string, key: string): { folder: string; file: string } {
    const folder = join(this.dir, encodeURIComponent(jobId));
    const encoded = encodeURIComponent(key).replace(/\./g, "%2E");
    // File names are limited to 255 bytes: long keys go by their hash.
    const name = encoded.length <= 200 ? encoded : `%sha256-${createHash("sha256").update(key).digest("hex")}`;
    return { folder, file: join(folder, name) };
  }

  async get(jobId: string, key: string): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await readFile(this.#path(jobId, key).file));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async put(jobId: string, key: string, value: Uint8Array): Promise<void> {
    const { folder, file } = this.#path(jobId, key);
    await mkdir(folder, { recursive: true });
    const tmp = `${file}.${randomUUID()}.tmp`;
    await writeFile(tmp, value);
    await rename(tmp, file);
  }

  async delete(jobId: string, key: string): Promise<void> {
    await rm(this.#path(jobId, key).file, { force: true });
  }
}
