// Priority bands against the real Redis: with priorities 0 and 9 queued, a runner takes 9 first
// and 0 still runs within its share (every STARVATION_TURN-th read goes lowest first); a group
// learns of a band created after it started reading.
import { testRedisPrefix } from "@corral/server-kit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STARVATION_TURN } from "./dispatch/dispatcher.js";
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

const prefix = testRedisPrefix("broker-priority");
let ledger: TestLedger;
let srv: BrokerServer;
const runners: TestRunner[] = [];

beforeAll(async () => {
  ledger = createTestLedger();
  srv = await startBrokerServer({ prefix, ledger, leaseDurationMs: 30_000, reapIntervalMs: 1_000, pollIntervalMs: 500 });
});

afterAll(async () => {
  for (const r of runners) r.kill();
  await srv.close();
  await dropRedisPrefix(prefix);
});

function queue(name: string, prefixId: string, priority: number, n: number, parentId = "") {
  return Array.from({ length: n }, (_, i) => {
    const env = ledger.add({ taskId: `${prefixId}-${i}`, clusterId: DEFAULT, name, version: "v1.0" });
    env.priority = priority;
    env.parentId = parentId;
    return env;
  });
}

/** Runs `count` tasks one at a time on a one-slot runner; answers their priorities in run order. */
async function runOneByOne(r: TestRunner, count: number): Promise<number[]> {
  const order: number[] = [];
  for (let i = 0; i < count; i++) {
    const a = await r.take("assign");
    order.push(a.task!.priority);
    r.send({ case: "completed", value: { lease: { taskId: a.lease!.taskId, attempt: a.lease!.attempt, token: a.lease!.token } } });
    await r.take("ack");
    r.send({ case: "credit", value: { n: 1 } });
  }
  return order;
}

/** Like runOneByOne, answering task ids without their `-<n>` suffix. */
async function runKeysOneByOne(r: TestRunner, count: number): Promise<string[]> {
  const order: string[] = [];
  for (let i = 0; i < count; i++) {
    const a = await r.take("assign");
    order.push(a.task!.taskId.replace(/-\d+$/, ""));
    r.send({ case: "completed", value: { lease: { taskId: a.lease!.taskId, attempt: a.lease!.attempt, token: a.lease!.token } } });
    await r.take("ack");
    r.send({ case: "credit", value: { n: 1 } });
  }
  return order;
}

describe("priority", () => {
  it("runs priority 9 first while priority 0 keeps its share", async () => {
    await srv.dispatch.enqueue({ tasks: [...queue("mixed", "low", 0, 10), ...queue("mixed", "high", 9, 10)] });
    const r = connectRunner(runnerTransport(srv.url), hello({ runnerId: "r-mixed", identifiers: ["mixed@v1.0"], slots: 1 }));
    runners.push(r);
    const order = await runOneByOne(r, 20);
    expect(order[0]).toBe(9);
    const window = order.slice(0, 2 * STARVATION_TURN);
    // The low priority is not starved: it runs before the high one has drained...
    expect(window).toContain(0);
    // ...but only in its share.
    expect(window.filter((p) => p === 9).length).toBeGreaterThanOrEqual(window.length - Math.ceil(window.length / STARVATION_TURN) - 1);
    expect(order.filter((p) => p === 0)).toHaveLength(10);
    expect(order.filter((p) => p === 9)).toHaveLength(10);
  });

  it("depth first: takes a priority's subtasks before the root tasks queued before them", async () => {
    await srv.dispatch.enqueue({ tasks: queue("deep", "root", 0, 3) });
    await srv.dispatch.enqueue({ tasks: queue("deep", "sub", 0, 3, "root-0") });
    const r = connectRunner(runnerTransport(srv.url), hello({ runnerId: "r-deep", identifiers: ["deep@v1.0"], slots: 1 }));
    runners.push(r);
    const order = await runKeysOneByOne(r, 6);
    expect(order[0]).toBe("sub");
    // Every STARVATION_TURN-th read goes lowest band first: at most one root may slip in.
    expect(order.slice(0, 4).filter((k) => k === "sub")).toHaveLength(3);
  });

  it("depth first never overtakes a user's higher priority", async () => {
    await srv.dispatch.enqueue({ tasks: queue("deep2", "root5", 5, 2) });
    await srv.dispatch.enqueue({ tasks: queue("deep2", "sub4", 4, 2, "root5-0") });
    const r = connectRunner(runnerTransport(srv.url), hello({ runnerId: "r-deep2", identifiers: ["deep2@v1.0"], slots: 1 }));
    runners.push(r);
    const order = await runKeysOneByOne(r, 4);
    expect(order.slice(0, 2)).toEqual(["root5", "root5"]);
  });

  it("reads a band that appears while the runner is connected", async () => {
    const r = connectRunner(runnerTransport(srv.url), hello({ runnerId: "r-late", identifiers: ["late@v1.0"], slots: 1 }));
    runners.push(r);
    await r.take("welcome");
    await srv.dispatch.enqueue({ tasks: queue("late", "late-high", 5, 1) });
    const a = await r.take("assign");
    expect(a.task!.priority).toBe(5);
  });
});
