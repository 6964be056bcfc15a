// The gate scripts against the real Redis: a concurrency slot is taken with its lease and freed
// exactly once by whichever ends the lease (completed or failed, expired, given back), a lease lost
// with its record stops holding its slot, a waiting task revoked is never started, and a rate
// limit answers when its window lets the next start through.
import { create } from "@bufbuild/protobuf";
import { ConcurrencyLimitSchema, RateLimitSchema, TaskEnvelopeSchema, type TaskEnvelope } from "@corral/proto";
import { createRedis } from "@corral/server-kit";
import { TEST_REDIS_URL, testRedisPrefix } from "@corral/server-kit/testing";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dropRedisPrefix } from "../test-support/harness.js";
import { attemptKey, clusterKeyBase } from "./keys.js";
import { createLeaseStore, type LeaseStore } from "./lease-store.js";
import { createQueueStore, slotToken, type ClaimRequest, type QueueStore } from "./queue-store.js";
import type { GateClaimed } from "./gate-claims.js";

const prefix = testRedisPrefix("broker-gates");
const CLUSTER = "c-gates";
let redis: Redis;
let queues: QueueStore;
let leases: LeaseStore;

beforeAll(() => {
  redis = createRedis({ url: TEST_REDIS_URL, keyPrefix: prefix });
  queues = createQueueStore(redis, { recordTtlSec: 3600, channelPrefix: prefix });
  leases = createLeaseStore(redis, { doneTtlSec: 3600, channelPrefix: prefix });
});

afterAll(async () => {
  await dropRedisPrefix(prefix);
  redis.disconnect();
});

function keyed(taskId: string, key: string, limit: number, name = "gate"): TaskEnvelope {
  return create(TaskEnvelopeSchema, {
    taskId,
    attempt: 1,
    jobId: `job-${taskId}`,
    teamId: "team",
    clusterId: CLUSTER,
    identifier: { name, version: "v1.0" },
    concurrency: create(ConcurrencyLimitSchema, { key, limit }),
  });
}

const running = (key: string) => redis.zcard(`${clusterKeyBase(CLUSTER)}cc:${key}`);

async function claim(slots: number, name = "gate", expiryMs = Date.now() + 60_000): Promise<GateClaimed & { tokenBase: string }> {
  const tokenBase = `tok-${Math.random().toString(36).slice(2)}`;
  const claimed = await queues.claimGated("b", CLUSTER, [`${name}:v1.0`], { sessions: Array(slots).fill("s1"), tokenBase }, expiryMs, Date.now() - 60_000);
  return { ...claimed, tokenBase };
}

function lease(c: GateClaimed & { tokenBase: string }, i: number) {
  const { entry, slot } = c.leased[i]!;
  return { clusterId: CLUSTER, taskId: entry.taskId, attempt: entry.attempt, token: slotToken(c.tokenBase, slot) };
}

describe("gate scripts", () => {
  it("starts at most the limit of a key and frees a slot exactly once when its lease completes", async () => {
    await queues.enqueue(["k1", "k2", "k3"].map((id) => keyed(id, "once", 2)));
    const waiting = async () => (await queues.stats(CLUSTER)).find((s) => s.queue === "gate:v1.0!g");
    expect(await waiting()).toMatchObject({ length: 3, lag: 3, gated: true });
    const first = await claim(5);
    expect(await waiting()).toMatchObject({ length: 1, gated: true });
    expect(first.leased.map((l) => l.entry.taskId)).toEqual(["k1", "k2"]);
    expect(first.leased[0]!.entry.gated?.startedAtMs).toBeGreaterThan(0);
    expect(await running("once")).toBe(2);
    expect((await claim(5)).leased).toHaveLength(0);
    expect(await leases.complete([lease(first, 0)])).toEqual([true]);
    expect(await running("once")).toBe(1);
    // Completing again (a retried report) frees nothing more.
    await leases.complete([lease(first, 0)]);
    expect(await running("once")).toBe(1);
    const next = await claim(5);
    expect(next.leased.map((l) => l.entry.taskId)).toEqual(["k3"]);
    expect(await running("once")).toBe(2);
  });

  it("frees the slot of an expired lease once, and a late completion of it frees nothing", async () => {
    await queues.enqueue(["e1", "e2"].map((id) => keyed(id, "expiry", 1)));
    const first = await claim(2, "gate", Date.now() - 1);
    expect(first.leased).toHaveLength(1);
    const expired = await leases.expireDue(100, 60_000);
    expect(expired.map((e) => e.taskId)).toContain("e1");
    expect(await running("expiry")).toBe(0);
    await leases.complete([lease(first, 0)]);
    expect(await running("expiry")).toBe(0);
    expect((await claim(2)).leased.map((l) => l.entry.taskId)).toEqual(["e2"]);
  });

  it("gives back a lease of a closed session: its slot frees and the task waits first in line again", async () => {
    await queues.enqueue(["g1", "g2"].map((id) => keyed(id, "giveback", 1, "giveback")));
    const first = await claim(1, "giveback");
    const { entry, slot } = first.leased[0]!;
    const request: ClaimRequest = { entry, token: slotToken(first.tokenBase, slot), expiryMs: Date.now() + 60_000, sessionId: "s1", brokerId: "b" };
    await queues.release([request]);
    expect(await running("giveback")).toBe(0);
    expect((await claim(1, "giveback")).leased.map((l) => l.entry.taskId)).toEqual(["g1"]);
  });

  it("never starts a waiting task whose job was revoked, and starts the next one", async () => {
    await queues.enqueue([keyed("r1", "revoke", 1, "revoke"), keyed("r2", "revoke", 1, "revoke")]);
    await queues.markRevoked("job-r1", [], 60);
    expect(await queues.drop([{ clusterId: CLUSTER, taskId: "r2", attempt: 1 }])).toBe(1);
    expect((await claim(2, "revoke")).leased).toHaveLength(0);
    expect(await running("revoke")).toBe(0);
    expect((await leases.attempt(CLUSTER, "r1", 1))?.state).toBe("revoked");
  });

  it("stops counting a slot whose lease was lost with its record", async () => {
    await queues.enqueue(["l1", "l2"].map((id) => keyed(id, "lost", 1, "lost")));
    // Leased with an expiry long past: the cutoff (a minute ago) no longer counts it.
    const first = await claim(1, "lost", Date.now() - 120_000);
    expect(first.leased).toHaveLength(1);
    await redis.del(attemptKey(CLUSTER, "l1", 1));
    await redis.zrem(`corral:{${CLUSTER}}:leases`, "l1:1");
    expect((await claim(1, "lost")).leased.map((l) => l.entry.taskId)).toEqual(["l2"]);
  });

  it("answers when a rate limit lets the next start through", async () => {
    const mail = (id: string) =>
      create(TaskEnvelopeSchema, {
        taskId: id,
        attempt: 1,
        jobId: "job-mail",
        teamId: "team",
        clusterId: CLUSTER,
        identifier: { name: "mail", version: "v1.0" },
        rateLimit: create(RateLimitSchema, { name: "mails", limit: 2, period: { seconds: 60n, nanos: 0 } }),
      });
    await queues.enqueue(["m1", "m2", "m3"].map(mail));
    const first = await claim(3, "mail");
    expect(first.leased).toHaveLength(2);
    expect(first.retryInMs).toBeGreaterThan(0);
    expect(first.retryInMs).toBeLessThanOrEqual(60_000);
    const again = await claim(3, "mail");
    expect(again.leased).toHaveLength(0);
    expect(again.retryInMs).toBeGreaterThan(0);
  });
});
