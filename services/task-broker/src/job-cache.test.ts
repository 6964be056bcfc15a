// JobCacheService against the real Redis: keys per job and team, overwrites, the per-value and
// per-job limits with their names in the error, validated input, and a job's cache removed once
// unused for the retention.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { JobCacheService } from "@corral/proto";
import { TEST_REDIS_URL, testRedisPrefix } from "@corral/server-kit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { jobCacheKeys } from "./redis/keys.js";
import { createTestLedger } from "./test-support/test-ledger.js";
import { dropRedisPrefix, OTHER_TEAM_KEY, runnerTransport, startBrokerServer, type BrokerServer } from "./test-support/harness.js";

const prefix = testRedisPrefix("broker-job-cache");
let srv: BrokerServer;
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

beforeAll(async () => {
  srv = await startBrokerServer({
    prefix,
    ledger: createTestLedger(),
    jobCache: { maxValueBytes: 1000, maxJobBytes: 2000, retentionSec: 1 },
  });
});

afterAll(async () => {
  await srv.close();
  await dropRedisPrefix(prefix);
});

async function code(p: Promise<unknown>): Promise<ConnectError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

describe("job cache", () => {
  it("keeps values per job and team; a put overwrites; a delete removes", async () => {
    const cache = createClient(JobCacheService, runnerTransport(srv.url));
    const other = createClient(JobCacheService, runnerTransport(srv.url, OTHER_TEAM_KEY));
    await cache.putCacheEntry({ jobId: "job-a", key: "k", value: bytes("one") });
    expect(text((await cache.getCacheEntry({ jobId: "job-a", key: "k" })).value)).toBe("one");
    expect((await cache.getCacheEntry({ jobId: "job-b", key: "k" })).found).toBe(false);
    // Another team naming the same job id sees its own (empty) cache.
    expect((await other.getCacheEntry({ jobId: "job-a", key: "k" })).found).toBe(false);
    await other.putCacheEntry({ jobId: "job-a", key: "k", value: bytes("theirs") });
    expect(text((await cache.getCacheEntry({ jobId: "job-a", key: "k" })).value)).toBe("one");
    const put = await cache.putCacheEntry({ jobId: "job-a", key: "k", value: bytes("two!") });
    expect(put.jobBytes).toBe(1 + 4);
    expect(text((await cache.getCacheEntry({ jobId: "job-a", key: "k" })).value)).toBe("two!");
    await cache.deleteCacheEntry({ jobId: "job-a", key: "k" });
    expect((await cache.getCacheEntry({ jobId: "job-a", key: "k" })).found).toBe(false);
    // An empty value is a value.
    await cache.putCacheEntry({ jobId: "job-a", key: "empty", value: new Uint8Array() });
    expect(await cache.getCacheEntry({ jobId: "job-a", key: "empty" })).toMatchObject({ found: true });
  });

  it("refuses a value over the value limit and a put over the job's limit, naming the limit", async () => {
    const cache = createClient(JobCacheService, runnerTransport(srv.url));
    const big = await code(cache.putCacheEntry({ jobId: "job-l", key: "big", value: new Uint8Array(1001) }));
    expect(big.code).toBe(Code.ResourceExhausted);
    expect(big.rawMessage).toContain("value limit of 1000 bytes");
    await cache.putCacheEntry({ jobId: "job-l", key: "a", value: new Uint8Array(999) });
    await cache.putCacheEntry({ jobId: "job-l", key: "b", value: new Uint8Array(999) });
    const over = await code(cache.putCacheEntry({ jobId: "job-l", key: "c", value: new Uint8Array(10) }));
    expect(over.code).toBe(Code.ResourceExhausted);
    expect(over.rawMessage).toContain("per-job limit of 2000 bytes");
    // An overwrite counts the new value in place of the old one; a delete gives bytes back.
    await cache.putCacheEntry({ jobId: "job-l", key: "b", value: new Uint8Array(5) });
    await cache.deleteCacheEntry({ jobId: "job-l", key: "a" });
    expect((await cache.putCacheEntry({ jobId: "job-l", key: "c", value: new Uint8Array(10) })).jobBytes).toBe(1 + 5 + 1 + 10);
  });

  it("answers INVALID_ARGUMENT naming the field", async () => {
    const cache = createClient(JobCacheService, runnerTransport(srv.url));
    const noKey = await code(cache.getCacheEntry({ jobId: "job-v", key: "" }));
    expect(noKey.code).toBe(Code.InvalidArgument);
    expect(noKey.rawMessage).toContain("key");
    const longJob = await code(cache.putCacheEntry({ jobId: "j".repeat(101), key: "k", value: bytes("x") }));
    expect(longJob.code).toBe(Code.InvalidArgument);
    expect(longJob.rawMessage).toContain("job_id");
  });

  it("needs an API key", async () => {
    const anonymous = createClient(JobCacheService, runnerTransport(srv.url, "corral_nobody_zzzzzzzzzzzzzzzzzzzz"));
    expect((await code(anonymous.getCacheEntry({ jobId: "job-a", key: "k" }))).code).toBe(Code.Unauthenticated);
  });

  it("removes a job's cache once it went unused for the retention", async () => {
    const cache = createClient(JobCacheService, runnerTransport(srv.url));
    await cache.putCacheEntry({ jobId: "job-r", key: "k", value: bytes("v") });
    // Redis expires the keys: wait for the event (both keys gone), not for a fixed time. Watched
    // with EXISTS, since a get is a use that keeps the cache.
    const keys = jobCacheKeys("team-1", "job-r");
    const redis = new Redis(TEST_REDIS_URL, { keyPrefix: prefix });
    try {
      expect(await redis.exists(keys.entries, keys.bytes)).toBe(2);
      while ((await redis.exists(keys.entries, keys.bytes)) > 0) await new Promise((r) => setTimeout(r, 100));
    } finally {
      redis.disconnect();
    }
    expect((await cache.getCacheEntry({ jobId: "job-r", key: "k" })).found).toBe(false);
  }, 10_000);
});
