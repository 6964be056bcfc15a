// Load: 1,000 concurrent runner streams on one broker all receive work, while the broker's Redis
// connections stay a constant handful (not one per runner).
import { Redis } from "ioredis";
import { TEST_REDIS_URL, testRedisPrefix } from "@corral/server-kit/testing";
import { afterAll, beforeAll, expect, it } from "vitest";
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
const RUNNERS = 1_000;

const prefix = testRedisPrefix("broker-load");
let ledger: TestLedger;
let srv: BrokerServer;
let admin: Redis;
const runners: TestRunner[] = [];

beforeAll(async () => {
  ledger = createTestLedger();
  srv = await startBrokerServer({ prefix, ledger, leaseDurationMs: 60_000 });
  admin = new Redis(TEST_REDIS_URL);
});

afterAll(async () => {
  for (const r of runners) r.kill();
  await srv.close();
  await dropRedisPrefix(prefix);
  admin.disconnect();
});

async function brokerConnections(): Promise<number> {
  const list = (await admin.client("LIST")) as string;
  return list.split("\n").filter((line) => line.includes(`name=${srv.broker.connectionName}:`)).length;
}

it("serves 1,000 runner streams with a bounded number of Redis connections", { timeout: 120_000 }, async () => {
  // A few HTTP/2 connections carry all streams, as many runner processes behind a proxy would.
  const transports = Array.from({ length: 4 }, () => runnerTransport(srv.url));
  for (let i = 0; i < RUNNERS; i++) {
    // Half the runners serve one identifier set, half another: two dispatch groups.
    const identifiers = i % 2 === 0 ? ["load@v1.0"] : ["load@v1.0", "other@v1.0"];
    runners.push(connectRunner(transports[i % transports.length]!, hello({ runnerId: `r-${i}`, identifiers, slots: 1 })));
  }
  await Promise.all(runners.map((r) => r.take("welcome", 60_000)));
  expect(srv.broker.sessions()).toHaveLength(RUNNERS);
  expect(srv.broker.dispatchGroups).toBe(2);

  const tasks = Array.from({ length: RUNNERS }, (_, i) =>
    ledger.add({ taskId: `t-load-${i}`, clusterId: DEFAULT, name: "load", version: "v1.0" }),
  );
  const res = await srv.dispatch.enqueue({ tasks });
  expect(res.enqueuedCount).toBe(RUNNERS);

  // Every runner has credit 1, so every runner gets exactly one task.
  const assigns = await Promise.all(runners.map((r) => r.take("assign", 60_000)));
  expect(new Set(assigns.map((a) => a.task!.taskId)).size).toBe(RUNNERS);
  const connections = await brokerConnections();
  expect(connections).toBeGreaterThan(0);
  expect(connections).toBeLessThanOrEqual(3);

  runners.forEach((r, i) => {
    const { taskId, attempt, token } = assigns[i]!.lease!;
    r.send({ case: "completed", value: { lease: { taskId, attempt, token } } });
  });
  const acks = await Promise.all(runners.map((r) => r.take("ack", 60_000)));
  expect(acks.every((a) => a.accepted)).toBe(true);
  expect(tasks.every((t) => ledger.task(t.taskId)?.state === "computed")).toBe(true);
  expect(await brokerConnections()).toBeLessThanOrEqual(3);
});
