// Live registration over the real Work stream and Redis: Reregister moves a session to the queues
// of its new identifiers without a reconnect, leases it already holds stay valid, and a release
// runner that names nothing in Hello gets nothing until it reregisters.
import { Code } from "@connectrpc/connect";
import { RunnerKind, type PresenceReport } from "@corral/proto";
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
const prefix = testRedisPrefix("broker-reregister");
let ledger: TestLedger;
let srv: BrokerServer;
const runners: TestRunner[] = [];
const reports: PresenceReport[] = [];

function runner(h: Parameters<typeof hello>[0]): TestRunner {
  const r = connectRunner(runnerTransport(srv.url), hello(h));
  runners.push(r);
  return r;
}

function identifiers(...specs: string[]) {
  return specs.map((s) => {
    const [name, version] = s.split("@");
    return { name: name!, version: version! };
  });
}

async function enqueue(...tasks: Parameters<TestLedger["add"]>[0][]) {
  return srv.dispatch.enqueue({ tasks: tasks.map((t) => ledger.add(t)) });
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  ledger = createTestLedger();
  srv = await startBrokerServer({
    prefix,
    ledger,
    leaseDurationMs: 10_000,
    pollIntervalMs: 300,
    presence: {
      report: async (batch) => {
        reports.push(...batch);
        return { keepsInstances: true };
      },
    },
    presenceThrottleMs: 0,
  });
});

afterAll(async () => {
  for (const r of runners) r.kill();
  await srv.close();
  await dropRedisPrefix(prefix);
});

describe("Reregister", () => {
  it("moves new assignments to the new identifiers and keeps the leases already held", async () => {
    await enqueue({ taskId: "t-rr-a1", clusterId: DEFAULT, name: "rr-a", version: "v1.0" });
    const r = runner({ runnerId: "r-rr", identifiers: ["rr-a@v1.0"], slots: 2 });
    await r.take("welcome");
    const a1 = await r.take("assign");
    expect(a1.task?.taskId).toBe("t-rr-a1");

    r.send({ case: "reregister", value: { identifiers: identifiers("rr-b@v1.0"), revision: 1 } });
    expect((await r.take("reregistered")).revision).toBe(1);

    await enqueue(
      { taskId: "t-rr-a2", clusterId: DEFAULT, name: "rr-a", version: "v1.0" },
      { taskId: "t-rr-b1", clusterId: DEFAULT, name: "rr-b", version: "v1.0" },
    );
    expect((await r.take("assign")).task?.taskId).toBe("t-rr-b1");

    // The lease taken under the old registration is still this session's: its result is accepted.
    const { taskId, attempt, token } = a1.lease!;
    r.send({ case: "completed", value: { lease: { taskId, attempt, token } } });
    const ack = await r.take("ack");
    expect(ack.accepted).toBe(true);
    expect(ledger.task("t-rr-a1")?.state).toBe("computed");

    // The new A task waits for a runner of A: another one gets it, this one never does.
    const other = runner({ runnerId: "r-rr-other", identifiers: ["rr-a@v1.0"], slots: 1 });
    expect((await other.take("assign")).task?.taskId).toBe("t-rr-a2");
    expect(r.all("assign").map((a) => a.task?.taskId)).toEqual(["t-rr-a1", "t-rr-b1"]);

    // The registry hears the new identifiers.
    const latest = () => reports.filter((p) => p.node?.id === "r-rr").at(-1)?.node?.identifiers.map((i) => i.name);
    await until(() => latest()?.[0] === "rr-b");
    expect(latest()).toEqual(["rr-b"]);
  });

  it("gives a release runner with no identifiers nothing until it reregisters", async () => {
    await enqueue({ taskId: "t-rr-rel", clusterId: DEFAULT, name: "rr-rel", version: "v1.0" });
    const r = runner({ runnerId: "r-rr-rel", identifiers: [], slots: 1, kind: RunnerKind.RELEASE });
    await r.take("welcome");
    expect(r.all("assign")).toEqual([]);
    r.send({ case: "reregister", value: { identifiers: identifiers("rr-rel@v1.0"), revision: 1 } });
    expect((await r.take("reregistered")).revision).toBe(1);
    expect((await r.take("assign")).task?.taskId).toBe("t-rr-rel");
  });

  it("still refuses a direct runner's Hello that names no identifier", async () => {
    const r = runner({ runnerId: "r-rr-direct", identifiers: [], slots: 1, kind: RunnerKind.DIRECT });
    const err = await r.done;
    expect(err?.code).toBe(Code.InvalidArgument);
    expect(err?.rawMessage).toMatch(/hello\.identifiers/);
  });

  it("ends the stream when a revision does not increase", async () => {
    const r = runner({ runnerId: "r-rr-rev", identifiers: ["rr-c@v1.0"], slots: 1 });
    await r.take("welcome");
    r.send({ case: "reregister", value: { identifiers: identifiers("rr-d@v1.0"), revision: 2 } });
    expect((await r.take("reregistered")).revision).toBe(2);
    r.send({ case: "reregister", value: { identifiers: identifiers("rr-e@v1.0"), revision: 2 } });
    const error = await r.take("error");
    expect(error.code).toBe(Code.InvalidArgument);
    expect((await r.done)?.code).toBe(Code.InvalidArgument);
  });
});
