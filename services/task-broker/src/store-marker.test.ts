// The Redis data-loss watch: a first look writes the marker; a marker that disappears later makes
// exactly one replica ask for a resync, and a failed resync is tried again.
import { createLogger } from "@corral/server-kit";
import { testRedisPrefix, TEST_REDIS_URL } from "@corral/server-kit/testing";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { createStoreMarkerWatch, markerKey, resyncLockKey } from "./store-marker.js";

describe("store marker watch", () => {
  const redis = new Redis(TEST_REDIS_URL, { keyPrefix: testRedisPrefix("marker") });
  const logger = createLogger("marker-test", "silent");
  afterAll(async () => {
    await redis.del(markerKey, resyncLockKey);
    await redis.quit();
  });

  it("resyncs once per loss across replicas, and again after a failed attempt", async () => {
    const calls: string[] = [];
    let fail = false;
    const resync = (who: string) => async () => {
      if (fail) throw new Error("job-service down");
      calls.push(who);
    };
    const a = createStoreMarkerWatch({ redis, brokerId: "a", intervalMs: 60_000, logger, resync: resync("a") });
    const b = createStoreMarkerWatch({ redis, brokerId: "b", intervalMs: 60_000, logger, resync: resync("b") });
    // A first look on a store without the marker resynchronises too (it may have been wiped while
    // no broker ran), once across replicas.
    await Promise.all([a.checkOnce(), b.checkOnce()]);
    await Promise.all([a.checkOnce(), b.checkOnce()]);
    expect(await redis.get(markerKey)).not.toBeNull();
    expect(calls).toHaveLength(1);
    calls.length = 0;
    const started = a.resyncs + b.resyncs;

    await redis.del(markerKey); // what a restart without persistence or FLUSHALL leaves
    fail = true;
    await a.checkOnce();
    expect(calls).toEqual([]);
    expect(await redis.get(resyncLockKey)).toBeNull(); // released for the next try
    fail = false;
    await Promise.all([a.checkOnce(), b.checkOnce()]);
    expect(calls).toHaveLength(1);
    await Promise.all([a.checkOnce(), b.checkOnce()]);
    expect(calls).toHaveLength(1); // both see the new marker
    expect(a.resyncs + b.resyncs - started).toBe(1);
  });
});
