// Concurrency keys and rate limits against the real Redis, over two broker replicas: a key's limit
// is never exceeded (start and end events of 1,000 tasks across 3 keys), keys take turns, a rate
// limit is never exceeded in any window (the recorded start times), and a killed runner's slot frees
// when its lease expires.
import { create } from "@bufbuild/protobuf";
import { ConcurrencyLimitSchema, RateLimitSchema, type Assign, type TaskEnvelope } from "@corral/proto";
import { testRedisPrefix } from "@corral/server-kit/testing";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestLedger, type TestLedger } from "./test-support/test-ledger.js";
import {
  CLUSTERS,
  connectRunner,
  dropRedisPrefix,
  hello,
  runnerTransport,
  startBrokerServer,
  type BrokerServer,
  type TestRunner,
} from "./test-support/harness.js";

const DEFAULT = CLUSTERS["team-1"]![""]!.id;
const prefix = testRedisPrefix("broker-concurrency");

let ledger: TestLedger;
let a: BrokerServer;
let b: BrokerServer;
const runners: TestRunner[] = [];
const stops: Array<() => void> = [];

beforeAll(async () => {
  ledger = createTestLedger();
  const start = (brokerId: string) =>
    startBrokerServer({ prefix, ledger, brokerId, leaseDurationMs: 2_000, heartbeatIntervalMs: 300, reapIntervalMs: 100, pollIntervalMs: 500 });
  [a, b] = await Promise.all([start("replica-a"), start("replica-b")]);
});

afterAll(async () => {
  for (const stop of stops) stop();
  for (const r of runners) r.kill();
  await Promise.all([a.close(), b.close()]);
  await dropRedisPrefix(prefix);
});

function task(name: string, id: string, gate: { key?: string; limit?: number; rate?: { name: string; limit: number; periodMs: number } }): TaskEnvelope {
  const env = ledger.add({ taskId: id, clusterId: DEFAULT, name, version: "v1.0" });
  if (gate.key) env.concurrency = create(ConcurrencyLimitSchema, { key: gate.key, limit: gate.limit ?? 1 });
  if (gate.rate) {
    env.rateLimit = create(RateLimitSchema, {
      name: gate.rate.name,
      limit: gate.rate.limit,
      period: { seconds: BigInt(Math.floor(gate.rate.periodMs / 1000)), nanos: (gate.rate.periodMs % 1000) * 1e6 },
    });
  }
  return env;
}

interface Event {
  kind: "start" | "end";
  key: string;
  taskId: string;
}

/**
 * A runner that completes every task it gets after a few event-loop turns, recording its start
 * (Assign received: after the lease) and its end (before Completed is sent: before the slot frees),
 * so the recorded intervals lie within the leases.
 */
function workingRunner(on: BrokerServer, runnerId: string, identifiers: string[], slots: number, events: Event[]): TestRunner {
  const r = connectRunner(runnerTransport(on.url), hello({ runnerId, identifiers, slots }));
  runners.push(r);
  let stopped = false;
  stops.push(() => (stopped = true));
  void (async () => {
    while (!stopped) {
      let assign: Assign;
      try {
        assign = await r.take("assign", 120_000);
      } catch {
        return;
      }
      const key = assign.task!.concurrency?.key ?? "";
      events.push({ kind: "start", key, taskId: assign.lease!.taskId });
      void (async () => {
        for (let i = 0; i < 1 + Math.floor(Math.random() * 3); i++) await new Promise((done) => setImmediate(done));
        events.push({ kind: "end", key, taskId: assign.lease!.taskId });
        const l = assign.lease!;
        r.send({ case: "completed", value: { lease: { taskId: l.taskId, attempt: l.attempt, token: l.token } } });
      })();
    }
  })();
  void (async () => {
    while (!stopped) {
      try {
        await r.take("ack", 120_000);
      } catch {
        return;
      }
      r.send({ case: "credit", value: { n: 1 } });
    }
  })();
  return r;
}

function computed(ids: readonly string[]): boolean {
  return ids.every((id) => ledger.task(id)?.state === "computed");
}

/** The most tasks of each key running at once, replaying the events in order. */
function peaks(events: readonly Event[]): Map<string, number> {
  const running = new Map<string, number>();
  const peak = new Map<string, number>();
  for (const e of events) {
    const n = (running.get(e.key) ?? 0) + (e.kind === "start" ? 1 : -1);
    running.set(e.key, n);
    peak.set(e.key, Math.max(peak.get(e.key) ?? 0, n));
  }
  return peak;
}

describe("concurrency keys", () => {
  it("never runs 3 tasks of a key with limit 2 over 1,000 tasks, 3 keys and 2 replicas; a burst of one key does not hold up the others", { timeout: 180_000 }, async () => {
    // Key a's burst is queued first: 600 tasks, then 200 of b and 200 of c.
    const keys = [...Array(600).fill("a"), ...Array(200).fill("b"), ...Array(200).fill("c")] as string[];
    const tasks = keys.map((key, i) => task("burst", `burst-${key}-${i}`, { key: `customer-${key}`, limit: 2 }));
    await a.dispatch.enqueue({ tasks: tasks.slice(0, 500) });
    await b.dispatch.enqueue({ tasks: tasks.slice(500) });
    const events: Event[] = [];
    workingRunner(a, "burst-a1", ["burst@v1.0"], 4, events);
    workingRunner(a, "burst-a2", ["burst@v1.0"], 4, events);
    workingRunner(b, "burst-b1", ["burst@v1.0"], 4, events);
    workingRunner(b, "burst-b2", ["burst@v1.0"], 4, events);
    await ledger.until(() => computed(tasks.map((t) => t.taskId)), 170_000);

    const starts = events.filter((e) => e.kind === "start");
    expect(starts).toHaveLength(1_000);
    for (const [key, peak] of peaks(events)) expect(peak, key).toBeLessThanOrEqual(2);
    // The burst key did run at its limit.
    expect(peaks(events).get("customer-a")).toBe(2);
    // Keys b and c started long before key a's burst was through.
    const firstOf = (key: string) => starts.findIndex((e) => e.key === key);
    expect(firstOf("customer-b")).toBeLessThan(20);
    expect(firstOf("customer-c")).toBeLessThan(20);
  });

  it("takes turns across keys when runners are the bottleneck", async () => {
    const tasks = ["x", "y", "z"].flatMap((key) => Array.from({ length: 6 }, (_, i) => task("turns", `turns-${key}-${i}`, { key, limit: 5 })));
    await a.dispatch.enqueue({ tasks });
    const events: Event[] = [];
    workingRunner(b, "turns-1", ["turns@v1.0"], 1, events);
    await ledger.until(() => computed(tasks.map((t) => t.taskId)), 60_000);
    const order = events.filter((e) => e.kind === "start").map((e) => e.key);
    // One slot, three keys: every three starts hold each key once.
    for (let i = 0; i < order.length; i += 3) expect(new Set(order.slice(i, i + 3)).size).toBe(3);
  });

  it("frees the slot of a killed runner when its lease expires", { timeout: 60_000 }, async () => {
    const tasks = [task("lost", "lost-1", { key: "solo", limit: 1 }), task("lost", "lost-2", { key: "solo", limit: 1 })];
    await a.dispatch.enqueue({ tasks });
    const doomed = connectRunner(runnerTransport(a.url), hello({ runnerId: "lost-doomed", identifiers: ["lost@v1.0"], slots: 2 }));
    runners.push(doomed);
    const first = await doomed.take("assign");
    // The key's one slot is held: the same runner, with credit left, gets nothing more...
    const events: Event[] = [];
    doomed.kill();
    // ...until its lease expires (no heartbeat) and the reaper frees the slot for the next runner.
    workingRunner(b, "lost-survivor", ["lost@v1.0"], 2, events);
    await ledger.until(() => computed(["lost-1", "lost-2"]), 50_000);
    expect(doomed.all("assign")).toHaveLength(1);
    const expired = ledger.results.filter((r) => r.result.outcome.case === "expired").map((r) => r.result.taskId);
    expect(expired).toContain(first.lease!.taskId);
    expect(peaks(events).get("solo")).toBe(1);
  });

  it("frees the slot of a failed attempt", async () => {
    const tasks = [task("fails", "fails-1", { key: "f", limit: 1 }), task("fails", "fails-2", { key: "f", limit: 1 })];
    await b.dispatch.enqueue({ tasks });
    const r = connectRunner(runnerTransport(a.url), hello({ runnerId: "fails-1", identifiers: ["fails@v1.0"], slots: 2 }));
    runners.push(r);
    const first = await r.take("assign");
    const l = first.lease!;
    r.send({ case: "failed", value: { lease: { taskId: l.taskId, attempt: l.attempt, token: l.token }, error: "boom", countsAsRetry: true } });
    const second = await r.take("assign");
    expect(second.lease!.taskId).not.toBe(l.taskId);
    expect(r.all("assign")).toHaveLength(2);
  });
});

describe("rate limits", () => {
  it("never starts more than 50 tasks in any one-second window across 2 replicas", { timeout: 120_000 }, async () => {
    const rate = { name: "emails", limit: 50, periodMs: 1_000 };
    const tasks = Array.from({ length: 160 }, (_, i) => task("mail", `mail-${i}`, { rate }));
    await a.dispatch.enqueue({ tasks: tasks.slice(0, 80) });
    await b.dispatch.enqueue({ tasks: tasks.slice(80) });
    const events: Event[] = [];
    workingRunner(a, "mail-a", ["mail@v1.0"], 20, events);
    workingRunner(b, "mail-b", ["mail@v1.0"], 20, events);
    await ledger.until(() => computed(tasks.map((t) => t.taskId)), 110_000);
    // The start times the broker reports (job-service records them as the tasks' start_time).
    const ids = new Set(tasks.map((t) => t.taskId));
    const startsMs = ledger.results
      .filter((r) => r.result.outcome.case === "started" && ids.has(r.result.taskId))
      .map((r) => (r.result.outcome.case === "started" ? timestampMs(r.result.outcome.value.startTime!) : 0))
      .sort((x, y) => x - y);
    expect(startsMs).toHaveLength(160);
    for (let i = 0; i + rate.limit < startsMs.length; i++) {
      expect(startsMs[i + rate.limit]! - startsMs[i]!, `start ${i + rate.limit}`).toBeGreaterThanOrEqual(rate.periodMs);
    }
  });

  it("holds a task that has both a key and a rate limit until both allow it", async () => {
    const rate = { name: "both", limit: 2, periodMs: 60_000 };
    const tasks = Array.from({ length: 3 }, (_, i) => task("both", `both-${i}`, { key: "k", limit: 5, rate }));
    await a.dispatch.enqueue({ tasks });
    const events: Event[] = [];
    workingRunner(a, "both-1", ["both@v1.0"], 5, events);
    await ledger.until(() => tasks.filter((t) => ledger.task(t.taskId)?.state === "computed").length === 2, 30_000);
    // The third waits for the minute's window: it is still queued after the first two are done.
    expect(tasks.filter((t) => ledger.task(t.taskId)?.state === "queued")).toHaveLength(1);
  });
});
