// The Lua scripts against the real Redis: dedupe at enqueue, drops at claim, extend, complete,
// and expiry handed to exactly one of two concurrent reapers.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { TaskEnvelopeSchema, type TaskEnvelope } from "@corral/proto";
import { createRedis } from "@corral/server-kit";
import { TEST_REDIS_URL, testRedisPrefix } from "@corral/server-kit/testing";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dropRedisPrefix } from "../test-support/harness.js";
import { attemptMember, CONSUMER_GROUP, leasesKey, streamKey } from "./keys.js";
import { createLeaseStore, type LeaseStore } from "./lease-store.js";
import { createQueueStore, slotToken, type QueueStore, type StreamEntry } from "./queue-store.js";

const prefix = testRedisPrefix("broker-lua");
const CLUSTER = "c-lua";
let r1: Redis;
let r2: Redis;
let queues: QueueStore;
let leases: LeaseStore;
let leases2: LeaseStore;

const env = (taskId: string, attempt = 1, version = "v1.0"): TaskEnvelope =>
  create(TaskEnvelopeSchema, {
    taskId,
    attempt,
    jobId: "job",
    teamId: "team",
    clusterId: CLUSTER,
    identifier: { name: "lua", version },
  });

async function readAll(queue = "lua:v1.0"): Promise<StreamEntry[]> {
  await queues.ensureGroups(CLUSTER, [queue]);
  return queues.read("test-consumer", [streamKey(CLUSTER, queue)], 1000);
}

async function lease(e: StreamEntry, sessionId: string, token: string, expiryMs = Date.now() + 60_000) {
  const [status] = await queues.claim([{ entry: e, token, expiryMs, sessionId, brokerId: "b" }]);
  return status;
}

beforeAll(() => {
  r1 = createRedis({ url: TEST_REDIS_URL, keyPrefix: prefix });
  r2 = createRedis({ url: TEST_REDIS_URL, keyPrefix: prefix });
  queues = createQueueStore(r1, { recordTtlSec: 3600, channelPrefix: prefix });
  leases = createLeaseStore(r1, { doneTtlSec: 3600, channelPrefix: prefix });
  leases2 = createLeaseStore(r2, { doneTtlSec: 3600, channelPrefix: prefix });
});

afterAll(async () => {
  await dropRedisPrefix(prefix);
  r1.disconnect();
  r2.disconnect();
});

describe("queue scripts", () => {
  it("enqueues an attempt once, and a new attempt again", async () => {
    expect(await queues.enqueue([env("a"), env("a")])).toEqual({ enqueued: 1, duplicates: 1 });
    expect(await queues.enqueue([env("a", 2)])).toEqual({ enqueued: 1, duplicates: 0 });
    const entries = await readAll();
    expect(entries.map((e) => [e.taskId, e.attempt])).toEqual([
      ["a", 1],
      ["a", 2],
    ]);
    expect(await lease(entries[0]!, "s1", "tok")).toBe("leased");
    expect(await lease(entries[1]!, "s1", "tok2")).toBe("leased");
  });

  it("enqueues a batch larger than one pipeline completely, and each attempt once", async () => {
    const many = Array.from({ length: 2_500 }, (_, i) => env(`big-${i}`, 1, "v9.0"));
    expect(await queues.enqueue([...many, many[0]!])).toEqual({ enqueued: 2_500, duplicates: 1 });
    expect(await queues.enqueue(many.slice(1_000, 1_100))).toEqual({ enqueued: 0, duplicates: 100 });
    const ids = new Set<string>();
    for (let read = await readAll("lua:v9.0"); read.length > 0; read = await readAll("lua:v9.0")) {
      for (const e of read) ids.add(e.taskId);
    }
    expect(ids.size).toBe(2_500);
  });

  it("reads an entry's keys from the stream, and from the envelope of an entry written without them", async () => {
    await queues.enqueue([env("keys", 3, "v8.0")]);
    const [entry] = await readAll("lua:v8.0");
    expect(entry).toMatchObject({ clusterId: CLUSTER, queue: "lua:v8.0", taskId: "keys", attempt: 3, jobId: "job" });
    expect(create(TaskEnvelopeSchema, env("keys", 3, "v8.0"))).toEqual(fromBinary(TaskEnvelopeSchema, entry!.bytes));
    // As an older broker wrote entries: the envelope and the enqueue time only.
    const raw = Buffer.from(toBinary(TaskEnvelopeSchema, env("old", 2, "v8.0"))).toString("base64");
    await r1.xadd(streamKey(CLUSTER, "lua:v8.0"), "*", "task", raw, "t", String(Date.now()));
    const [old] = await readAll("lua:v8.0");
    expect(old).toMatchObject({ clusterId: CLUSTER, queue: "lua:v8.0", taskId: "old", attempt: 2, jobId: "job" });
  });

  it("drops duplicate and revoked entries at claim time and leaves a live lease's entry alone", async () => {
    await queues.enqueue([env("dup")]);
    const [first] = await readAll();
    expect(await lease(first!, "s1", "t1")).toBe("leased");
    // The same entry delivered again (recovered after idling) backs the live lease: left pending.
    expect(await lease(first!, "s2", "t2")).toBe("inflight");
    // A copy of the attempt (Redis failover, manual re-add) is a duplicate: acknowledged.
    await r1.xadd(streamKey(CLUSTER, "lua:v1.0"), "*", "task", first!.raw, "t", "0");
    const [copy] = await readAll();
    expect(await lease(copy!, "s2", "t2")).toBe("duplicate");

    await queues.enqueue([env("rev")]);
    const [rev] = await readAll();
    await queues.markRevoked("job", ["rev"], 60);
    const [status] = await queues.claim([{ entry: rev!, token: "t-rev", expiryMs: Date.now() + 60_000, sessionId: "s", brokerId: "b" }]);
    expect(status).toBe("revoked");
    expect((await leases.attempt(CLUSTER, "rev", 1))?.state).toBe("revoked");
    expect((await queues.enqueue([env("rev")])).duplicates).toBe(1);
  });

  it("drops entries queued before their job or task was revoked, and only those", async () => {
    const job = (taskId: string, jobId: string) => create(TaskEnvelopeSchema, { ...env(taskId), jobId });
    await queues.enqueue([job("rj-1", "job-revoked"), job("rt-1", "job-task-revoked"), job("rt-2", "job-task-revoked")]);
    const entries = await readAll();
    await queues.markRevoked("job-revoked", [], 60);
    await queues.markRevoked("job-task-revoked", ["rt-1"], 60);
    const statuses = await queues.claim(
      entries.map((e, i) => ({ entry: e, token: `tok-${i}`, expiryMs: Date.now() + 60_000, sessionId: "s", brokerId: "b" })),
    );
    expect(Object.fromEntries(entries.map((e, i) => [e.taskId, statuses[i]]))).toEqual({
      "rj-1": "revoked",
      "rt-1": "revoked",
      "rt-2": "leased",
    });
    // The revoked ones hold no lease: not in the expiry set, the attempt record says revoked.
    expect(await r1.zscore(leasesKey(CLUSTER), attemptMember("rj-1", 1))).toBeNull();
    expect(await r1.zscore(leasesKey(CLUSTER), attemptMember("rt-1", 1))).toBeNull();
    expect(await r1.zscore(leasesKey(CLUSTER), attemptMember("rt-2", 1))).not.toBeNull();
    expect((await leases.attempt(CLUSTER, "rt-1", 1))?.state).toBe("revoked");
    expect((await leases.attempt(CLUSTER, "rt-2", 1))?.state).toBe("leased");
    // A job revoked after its task was queued again (a retry) runs: the marker predates the entry.
    await new Promise((r) => setTimeout(r, 5));
    await queues.enqueue([job("rj-1", "job-revoked")].map((e) => create(TaskEnvelopeSchema, { ...e, attempt: 2 })));
    const [retried] = await readAll();
    const [status] = await queues.claim([{ entry: retried!, token: "tok-r", expiryMs: Date.now() + 60_000, sessionId: "s", brokerId: "b" }]);
    expect(status).toBe("leased");
  });

  it("reads and leases in one call: entries into slots in order, revoked ones dropped, the rest left pending", async () => {
    const queue = "lua:v41.0";
    const stream = streamKey(CLUSTER, queue);
    await queues.ensureGroups(CLUSTER, [queue]);
    const job = (taskId: string, jobId: string) =>
      create(TaskEnvelopeSchema, { ...env(taskId, 1, "v41.0"), jobId });
    await queues.enqueue([job("rc-1", "rc-job"), job("rc-rev", "rc-revoked-job"), job("rc-2", "rc-job"), job("rc-3", "rc-job")]);
    await queues.markRevoked("rc-revoked-job", [], 60);
    // An entry as an older broker wrote it (no attempt member): read, never leased by the script.
    const raw = Buffer.from(toBinary(TaskEnvelopeSchema, job("rc-old", "rc-job"))).toString("base64");
    await r1.xadd(stream, "*", "task", raw, "t", String(Date.now()));
    await queues.enqueue([job("rc-4", "rc-job")]);
    const expiryMs = Date.now() + 60_000;
    // Slots name sessions in any order and repeat them; each gets its own token from the base.
    const slots = { sessions: ["s-a", "s-b", "s-a", "s-c"], tokenBase: "tok" };
    const got = await queues.readClaim("rc-broker", CLUSTER, [stream], 10, slots, expiryMs);
    expect(got.map((r) => [r.entry.taskId, r.status, r.slot])).toEqual([
      ["rc-1", "leased", 0],
      ["rc-rev", "revoked", 1],
      ["rc-2", "leased", 2],
      ["rc-3", "leased", 3],
      ["rc-old", "unclaimed", -1],
      ["rc-4", "unclaimed", -1],
    ]);
    expect(got[4]!.entry).toMatchObject({ taskId: "rc-old", jobId: "rc-job", attempt: 1, queue });
    const a1 = await leases.attempt(CLUSTER, "rc-1", 1);
    expect(a1).toMatchObject({ state: "leased" });
    expect(await r1.hget(`corral:{${CLUSTER}}:a:rc-1:1`, "tok")).toBe(slotToken("tok", 0));
    expect(await r1.hget(`corral:{${CLUSTER}}:a:rc-1:1`, "sid")).toBe("s-a");
    expect(await r1.hget(`corral:{${CLUSTER}}:a:rc-2:1`, "tok")).toBe("tok.2");
    expect(await r1.hget(`corral:{${CLUSTER}}:a:rc-2:1`, "sid")).toBe("s-a");
    expect(await r1.hget(`corral:{${CLUSTER}}:a:rc-3:1`, "tok")).toBe("tok.3");
    expect(await r1.hget(`corral:{${CLUSTER}}:a:rc-3:1`, "sid")).toBe("s-c");
    expect(Number(await r1.zscore(leasesKey(CLUSTER), attemptMember("rc-3", 1)))).toBe(expiryMs);
    expect((await leases.attempt(CLUSTER, "rc-rev", 1))?.state).toBe("revoked");
    expect(await r1.xlen(stream)).toBe(5); // the revoked entry is gone
    // What was left unclaimed is pending for this consumer and claimable later.
    const later = await queues.claim(
      got.slice(4).map((r, i) => ({ entry: r.entry, token: `later-${i}`, expiryMs, sessionId: "s-e", brokerId: "rc-broker" })),
    );
    expect(later).toEqual(["leased", "leased"]);
    // Nothing new: an empty answer, and the slots hold nothing.
    expect(await queues.readClaim("rc-broker", CLUSTER, [stream], 10, slots, expiryMs)).toEqual([]);
  });

  it("writes revocation markers into every cluster with queues, so each cluster's claims see them", async () => {
    const other = "c-lua-other";
    const inOther = create(TaskEnvelopeSchema, { ...env("rv-other"), clusterId: other, jobId: "rv-job" });
    const inMain = create(TaskEnvelopeSchema, { ...env("rv-main"), jobId: "rv-job" });
    const kept = create(TaskEnvelopeSchema, { ...env("rv-kept"), clusterId: other, jobId: "rv-job" });
    await queues.ensureGroups(other, ["lua:v1.0"]);
    await queues.enqueue([inOther, inMain, kept]);
    await queues.markRevoked("rv-job", ["rv-other", "rv-main"], 60);
    const slots = { sessions: ["s", "s"], tokenBase: "t" };
    const fromOther = await queues.readClaim("b", other, [streamKey(other, "lua:v1.0")], 10, slots, Date.now() + 60_000);
    expect(fromOther.map((r) => [r.entry.taskId, r.status])).toEqual([
      ["rv-other", "revoked"],
      ["rv-kept", "leased"],
    ]);
    const fromMain = (await readAll()).filter((e) => e.taskId === "rv-main");
    expect(await queues.claim([{ entry: fromMain[0]!, token: "t", expiryMs: Date.now() + 60_000, sessionId: "s", brokerId: "b" }])).toEqual([
      "revoked",
    ]);
  });

  it("gives back a lease granted to a session that closed, and only that lease", async () => {
    await queues.enqueue([env("orphan"), env("kept")]);
    const [orphan, kept] = await readAll();
    const request = (e: StreamEntry, token: string) => ({ entry: e, token, expiryMs: Date.now() + 60_000, sessionId: "s-closed", brokerId: "b" });
    expect(await queues.claim([request(orphan!, "tok-o"), request(kept!, "tok-k")])).toEqual(["leased", "leased"]);
    // A wrong token leaves the lease alone.
    await queues.release([request(kept!, "not-the-token")]);
    expect((await leases.attempt(CLUSTER, "kept", 1))?.state).toBe("leased");
    expect(await r1.zscore(leasesKey(CLUSTER), attemptMember("kept", 1))).not.toBeNull();

    await queues.release([request(orphan!, "tok-o")]);
    expect((await leases.attempt(CLUSTER, "orphan", 1))?.state).toBe("queued");
    expect(await r1.zscore(leasesKey(CLUSTER), attemptMember("orphan", 1))).toBeNull();
    // The attempt is back at the end of its stream and can be leased again.
    const [again] = await readAll();
    expect(again?.taskId).toBe("orphan");
    expect(again?.id).not.toBe(orphan?.id);
    expect(await lease(again!, "s2", "tok-2")).toBe("leased");
  });

  it("re-queues an entry that was read but never leased", async () => {
    await queues.enqueue([env("back")]);
    const [e] = await readAll();
    await queues.requeue([e!]);
    const [again] = await readAll();
    expect(again?.taskId).toBe("back");
    expect(again?.id).not.toBe(e?.id);
  });
});

describe("lease scripts", () => {
  it("extends only the leases the session still holds", async () => {
    await queues.enqueue([env("x1"), env("x2")]);
    const [e1, e2] = await readAll();
    await lease(e1!, "s-ext", "k1");
    await lease(e2!, "s-other", "k2");
    const lost = await leases.extend(CLUSTER, "s-ext", [attemptMember("x1", 1), attemptMember("x2", 1)], Date.now() + 120_000);
    expect(lost).toEqual([attemptMember("x2", 1)]);
    expect(Number(await r1.zscore(leasesKey(CLUSTER), attemptMember("x1", 1)))).toBeGreaterThan(Date.now() + 60_000);
  });

  it("resumes a lease with its token only", async () => {
    await queues.enqueue([env("res")]);
    const [e] = await readAll();
    await lease(e!, "s-old", "good");
    const none = await leases.resume(CLUSTER, "s-new", "b", [{ member: attemptMember("res", 1), token: "bad" }], Date.now() + 1000);
    expect(none.size).toBe(0);
    const ok = await leases.resume(CLUSTER, "s-new", "b", [{ member: attemptMember("res", 1), token: "good" }], Date.now() + 1000);
    expect(ok.get(attemptMember("res", 1))).toEqual({ jobId: "job", queue: "lua:v1.0" });
    expect(await leases.extend(CLUSTER, "s-old", [attemptMember("res", 1)], Date.now() + 1000)).toEqual([attemptMember("res", 1)]);
  });

  it("completes with the right token only", async () => {
    await queues.enqueue([env("done")]);
    const [e] = await readAll();
    await lease(e!, "s", "right");
    const key = { clusterId: CLUSTER, taskId: "done", attempt: 1 };
    expect(await leases.complete([{ ...key, token: "wrong" }])).toEqual([false]);
    expect(await leases.complete([{ ...key, token: "right" }])).toEqual([true]);
    expect((await leases.attempt(CLUSTER, "done", 1))?.state).toBe("done");
    expect(await r1.zscore(leasesKey(CLUSTER), attemptMember("done", 1))).toBeNull();
  });

  it("claims and completes over a thousand leases of two streams in one call each", async () => {
    const many = [...Array.from({ length: 1_200 }, (_, i) => env(`bulk-a-${i}`, 1, "v3.0")), ...Array.from({ length: 300 }, (_, i) => env(`bulk-b-${i}`, 1, "v4.0"))];
    await queues.enqueue(many);
    await queues.ensureGroups(CLUSTER, ["lua:v3.0", "lua:v4.0"]);
    const entries = await queues.read("bulk-consumer", [streamKey(CLUSTER, "lua:v3.0"), streamKey(CLUSTER, "lua:v4.0")], 2_000);
    expect(entries).toHaveLength(1_500);
    const expiryMs = Date.now() + 60_000;
    const statuses = await queues.claim(entries.map((entry, i) => ({ entry, token: `bulk-${i}`, expiryMs, sessionId: "s", brokerId: "b" })));
    expect(statuses.every((st) => st === "leased")).toBe(true);
    const members = entries.map((e) => attemptMember(e.taskId, e.attempt));
    expect((await r1.zmscore(leasesKey(CLUSTER), ...members)).every((score) => score !== null)).toBe(true);

    const done = await leases.complete(entries.map((e, i) => ({ clusterId: CLUSTER, taskId: e.taskId, attempt: e.attempt, token: `bulk-${i}` })));
    expect(done.every(Boolean)).toBe(true);
    expect((await r1.zmscore(leasesKey(CLUSTER), ...members)).every((score) => score === null)).toBe(true);
    for (const queue of ["lua:v3.0", "lua:v4.0"]) {
      expect(await r1.xlen(streamKey(CLUSTER, queue))).toBe(0);
      expect(((await r1.xpending(streamKey(CLUSTER, queue), CONSUMER_GROUP)) as [number])[0]).toBe(0);
    }
    expect((await leases.attempt(CLUSTER, "bulk-a-1199", 1))?.state).toBe("done");
  });

  it("hands every expired lease to exactly one of two concurrent reapers", async () => {
    const tasks = Array.from({ length: 50 }, (_, i) => env(`exp-${i}`, 1, "v2.0"));
    await queues.enqueue(tasks);
    const entries = await readAll("lua:v2.0");
    const past = Date.now() - 1;
    for (const e of entries) await lease(e, "s-exp", "t", past);
    const [a, b] = await Promise.all([leases.expireDue(1000, 60_000), leases2.expireDue(1000, 60_000)]);
    const mine = (l: { taskId: string }) => l.taskId.startsWith("exp-");
    const got = [...a.filter(mine), ...b.filter(mine)].map((l) => l.taskId).sort();
    expect(got).toEqual(tasks.map((t) => t.taskId).sort());
    expect((await leases.attempt(CLUSTER, "exp-0", 1))?.state).toBe("expired");
    await leases.expiryReported(got.map((taskId) => ({ clusterId: CLUSTER, taskId, attempt: 1 })));
    expect((await leases2.expireDue(1000, 60_000)).filter(mine)).toEqual([]);
  });

  it("hands an expiry out again when its reporter missed the report deadline", async () => {
    await queues.enqueue([env("stuck", 1, "v3.0")]);
    const [e] = await readAll("lua:v3.0");
    await lease(e!, "s-stuck", "t", Date.now() - 1);
    const isStuck = (l: { taskId: string }) => l.taskId === "stuck";
    // The first reaper takes it with a deadline already past (it "dies" before reporting).
    expect((await leases.expireDue(1000, -1_000)).filter(isStuck)).toHaveLength(1);
    expect((await leases2.expireDue(1000, 60_000)).filter(isStuck)).toHaveLength(1);
    expect((await leases.expireDue(1000, 60_000)).filter(isStuck)).toHaveLength(0);
    await leases2.expiryReported([{ clusterId: CLUSTER, taskId: "stuck", attempt: 1 }]);
  });
});
