// The job cache's Redis state (JobCacheService): one hash of entries and one byte count per team
// and job, each change one Lua script (put within the job's limit, get with a sliding expiry,
// delete giving bytes back).
import { ResourceExhaustedError } from "@corral/server-kit";
import type { RedisClient } from "./connection.js";
import { jobCacheKeys } from "./keys.js";
import { defineScripts } from "./scripts.js";

export interface JobCacheLimits {
  /** Most bytes of one value. */
  maxValueBytes: number;
  /** Most bytes of one job's cache (keys and values). */
  maxJobBytes: number;
  /** A job's cache is removed once unused (no put or get) for this long. */
  retentionSec: number;
}

export const defaultJobCacheLimits: JobCacheLimits = {
  maxValueBytes: 4 * 1024 * 1024,
  maxJobBytes: 64 * 1024 * 1024,
  retentionSec: 7 * 24 * 3600,
};

export interface JobCacheStore {
  get(teamId: string, jobId: string, key: string): Promise<Uint8Array | undefined>;
  /** Answers the job's bytes after the put; ResourceExhaustedError over a limit. */
  put(teamId: string, jobId: string, key: string, value: Uint8Array): Promise<number>;
  delete(teamId: string, jobId: string, key: string): Promise<void>;
}

/** The Buffer-returning variants ioredis defines next to each script command. */
interface CacheCommands {
  getCacheEntryBuffer(entries: string, bytes: string, key: string, retentionSec: number): Promise<[number, Buffer?]>;
  putCacheEntry(entries: string, bytes: string, key: string, value: Buffer, maxJobBytes: number, retentionSec: number): Promise<[number, number]>;
  deleteCacheEntry(entries: string, bytes: string, key: string): Promise<number>;
}

export function createJobCacheStore(redis: RedisClient, limits: JobCacheLimits = defaultJobCacheLimits): JobCacheStore {
  defineScripts(redis);
  const commands = redis as unknown as CacheCommands;
  return {
    async get(teamId, jobId, key) {
      const k = jobCacheKeys(teamId, jobId);
      const [found, value] = await commands.getCacheEntryBuffer(k.entries, k.bytes, key, limits.retentionSec);
      return Number(found) === 1 && value ? new Uint8Array(value) : undefined;
    },
    async put(teamId, jobId, key, value) {
      if (value.length > limits.maxValueBytes) {
        throw new ResourceExhaustedError(
          `job cache value of ${value.length} bytes is over the value limit of ${limits.maxValueBytes} bytes (CORRAL_JOB_CACHE_MAX_VALUE)`,
        );
      }
      const k = jobCacheKeys(teamId, jobId);
      const buf = Buffer.from(value.buffer, value.byteOffset, value.length);
      const [set, total] = await commands.putCacheEntry(k.entries, k.bytes, key, buf, limits.maxJobBytes, limits.retentionSec);
      if (Number(set) !== 1) {
        throw new ResourceExhaustedError(
          `job ${jobId}'s cache holds ${total} bytes: ${Buffer.byteLength(key) + value.length} more would take it over the per-job limit of ${limits.maxJobBytes} bytes (CORRAL_JOB_CACHE_MAX_JOB_BYTES)`,
        );
      }
      return Number(total);
    },
    async delete(teamId, jobId, key) {
      const k = jobCacheKeys(teamId, jobId);
      await commands.deleteCacheEntry(k.entries, k.bytes, key);
    },
  };
}
