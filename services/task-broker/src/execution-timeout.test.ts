// Execution timeouts against the real Redis: a runner that heartbeats but ignores its task's signal
// keeps its lease only until the attempt's deadline; the lease then expires as a timeout and the
// runner's late result is refused.
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { testRedisPrefix } from "@corral/server-kit/testing";
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
const LEASE_MS = 1_000;

const prefix = testRedisPrefix("broker-timeouts");
let ledger: TestLedger;
let srv: BrokerServer;
const runners: TestRunner[] = [];

beforeAll(async () => {
  ledger = createTestLedger();
  srv = await startBrokerServer({ prefix, ledger, leaseDurationMs: LEASE_MS, reapIntervalMs: 50, pollIntervalMs: 500 });
});

afterAll(async () => {
  for (const r of runners) r.kill();
  await srv.close();
  await dropRedisPrefix(prefix);
});

describe("execution timeout", () => {
  it("stops extending the lease of an attempt past its deadline and refuses its late result", async () => {
    const env = ledger.add({ taskId: "t-stubborn", clusterId: DEFAULT, name: "stubborn", version: "v1.0" });
    env.executionTimeout = durationFromMs(300);
    await srv.dispatch.enqueue({ tasks: [env] });
    const r = connectRunner(runnerTransport(srv.url), hello({ runnerId: "r-stubborn", identifiers: ["stubborn@v1.0"] }));
    runners.push(r);
    const a = await r.take("assign");
    // The runner keeps heartbeating as a healthy runner would, and never stops the task.
    let canceled = false;
    const cancel = r.take("cancel").finally(() => (canceled = true));
    const beat = (async () => {
      while (!canceled) {
        r.send({ case: "heartbeat", value: {} });
        await new Promise((res) => setTimeout(res, LEASE_MS / 4));
      }
    })();
    const c = await cancel;
    await beat;
    expect(c.lease?.token).toBe(a.lease?.token);
    expect(c.reason).toBe("execution timeout");
    await ledger.until(() => ledger.results.some((x) => x.result.taskId === "t-stubborn" && x.result.outcome.case === "expired"));
    const expiry = ledger.results.find((x) => x.result.taskId === "t-stubborn" && x.result.outcome.case === "expired")!;
    expect(expiry.result.outcome.case === "expired" && expiry.result.outcome.value.timedOut).toBe(true);

    r.send({ case: "completed", value: { lease: { taskId: a.lease!.taskId, attempt: a.lease!.attempt, token: a.lease!.token } } });
    expect((await r.take("ack")).accepted).toBe(false);
    expect(ledger.results.some((x) => x.result.taskId === "t-stubborn" && x.result.outcome.case === "completed" && x.status === 1)).toBe(false);
  });

  it("reports a plain lease expiry, not a timeout, for a silent runner before the deadline", async () => {
    const env = ledger.add({ taskId: "t-silent", clusterId: DEFAULT, name: "silent", version: "v1.0" });
    env.executionTimeout = durationFromMs(60_000);
    await srv.dispatch.enqueue({ tasks: [env] });
    const r = connectRunner(runnerTransport(srv.url), hello({ runnerId: "r-silent", identifiers: ["silent@v1.0"] }));
    runners.push(r);
    await r.take("assign");
    expect((await r.take("cancel")).reason).toBe("lease expired");
    await ledger.until(() => ledger.results.some((x) => x.result.taskId === "t-silent" && x.result.outcome.case === "expired"));
    const expiry = ledger.results.find((x) => x.result.taskId === "t-silent" && x.result.outcome.case === "expired")!;
    expect(expiry.result.outcome.case === "expired" && expiry.result.outcome.value.timedOut).toBe(false);
  });
});
