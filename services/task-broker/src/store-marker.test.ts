// The Redis data-loss watch: a first look writes the marker; a marker that disappears later makes
// exactly one replica ask for a resync, and a failed resync is tried again, still naming the time
// the loss was first seen (attempts leased since then keep running).
import { createLogger } from "@corral/server-kit";
import { testRedisPrefix, TEST_REDIS_URL } from "@corral/server-kit/testing";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { createStoreMarkerWatch, markerKey, resyncLockKey, type ResyncRequest } from "./store-marker.js";

describe("store marker watch", () => {
  const redis = new Redis(TEST_REDIS_URL, { keyPrefix: testRedisPrefix("marker") });
  const logger = createLogger("marker-test", "silent");
  afterAll(async () => {
    await redis.del(markerKey, resyncLockKey);
    await redis.quit();
  });

  it("resyncs once per loss across replicas, and again after a failed attempt", async () => {
    const calls: string[] = [];
    const requests: ResyncRequest[] = [];
    let fail = false;
    const resync = (who: string) => async (request: ResyncRequest) => {
      requests.push(request);
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
    requests.length = 0;
    const before = Date.now();
    await a.checkOnce();
    const after = Date.now();
    expect(calls).toEqual([]);
    expect(await redis.get(resyncLockKey)).toBeNull(); // released for the next try
    expect(requests).toHaveLength(1);
    const firstSeen = requests[0]!.lostSince.getTime();
    expect(firstSeen).toBeGreaterThanOrEqual(before);
    expect(firstSeen).toBeLessThanOrEqual(after);
    expect(requests[0]).toMatchObject({ brokerId: "a", reason: "redis marker missing" });
    await new Promise((r) => setTimeout(r, 20));
    fail = false;
    await a.checkOnce();
    expect(calls).toEqual(["a"]);
    // The retry still names the time the loss was first seen, not its own.
    expect(requests[1]!.lostSince.getTime()).toBe(firstSeen);
    await Promise.all([a.checkOnce(), b.checkOnce()]);
    expect(calls).toHaveLength(1);
    await Promise.all([a.checkOnce(), b.checkOnce()]);
    expect(calls).toHaveLength(1); // both see the new marker
    expect(a.resyncs + b.resyncs - started).toBe(1);
  });
});
