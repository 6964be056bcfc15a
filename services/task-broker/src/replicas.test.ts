// Two broker replicas on one Redis: a replica stopped mid-stream loses nothing, cancellation and
// session listings cross replicas, and expiries are reported once between reapers.
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
const prefix = testRedisPrefix("broker-replicas");

let ledger: TestLedger;
let a: BrokerServer;
let b: BrokerServer;
const runners: TestRunner[] = [];

function runner(on: BrokerServer, h: Parameters<typeof hello>[0]): TestRunner {
  const r = connectRunner(runnerTransport(on.url), hello(h));
  runners.push(r);
  return r;
}

const ref = (l: { taskId: string; attempt: number; token: string }) => ({ taskId: l.taskId, attempt: l.attempt, token: l.token });

async function start(brokerId: string, leaseDurationMs = 5_000) {
  return startBrokerServer({ prefix, ledger, brokerId, leaseDurationMs, reapIntervalMs: 50, pollIntervalMs: 500 });
}

beforeAll(async () => {
  ledger = createTestLedger();
  a = await start("replica-a");
  b = await start("replica-b");
});

afterAll(async () => {
  for (const r of runners) r.kill();
  await Promise.all([a.close(), b.close()]);
  await dropRedisPrefix(prefix);
});

describe("replicas", () => {
  it("sends Cancel to a runner connected to another replica", async () => {
    await a.dispatch.enqueue({
      tasks: [ledger.add({ taskId: "t-x-cancel", jobId: "job-x", clusterId: DEFAULT, name: "xcancel", version: "v1.0" })],
    });
    const r = runner(b, { runnerId: "r-x-cancel", identifiers: ["xcancel@v1.0"] });
    const assign = await r.take("assign");
    const res = await a.dispatch.revoke({ teamId: "team-1", jobId: "job-x", reason: "canceled" });
    expect(res.canceledLeases).toBe(1);
    expect((await r.take("cancel")).lease?.token).toBe(assign.lease?.token);
  });

  it("lists the sessions of every replica", async () => {
    const ra = runner(a, { runnerId: "r-list-a", identifiers: ["list@v1.0"] });
    const rb = runner(b, { runnerId: "r-list-b", identifiers: ["list@v1.0"] });
    const ids = [(await ra.take("welcome")).sessionId, (await rb.take("welcome")).sessionId];
    const listed = (await a.dispatch.listSessions({})).sessions;
    for (const id of ids) expect(listed.map((s) => s.sessionId)).toContain(id);
    expect(new Set(listed.filter((s) => ids.includes(s.sessionId)).map((s) => s.brokerId))).toEqual(
      new Set(["replica-a", "replica-b"]),
    );
  });

  it("reports each expired lease once although both replicas reap", async () => {
    const tasks = Array.from({ length: 20 }, (_, i) =>
      ledger.add({ taskId: `t-reap-${i}`, clusterId: DEFAULT, name: "reap", version: "v1.0" }),
    );
    const short = await start("replica-short", 300);
    try {
      const r = connectRunner(runnerTransport(short.url), hello({ runnerId: "r-reap", identifiers: ["reap@v1.0"], slots: 20 }));
      runners.push(r);
      await short.dispatch.enqueue({ tasks });
      for (let i = 0; i < 20; i++) await r.take("assign");
      r.kill();
      // Both long-lived replicas and this one reap; job-service answers with attempt 2 each time.
      await ledger.until(() => tasks.every((t) => ledger.task(t.taskId)?.envelope.attempt === 2));
      const expired = ledger.results.filter((x) => x.result.taskId.startsWith("t-reap-") && x.result.outcome.case === "expired");
      expect(expired).toHaveLength(20);
    } finally {
      await short.close();
    }
  });

  it("loses nothing when a replica stops mid-stream: the runner resumes on another", async () => {
    const tasks = ["t-move-1", "t-move-2", "t-move-3"].map((id) =>
      ledger.add({ taskId: id, clusterId: DEFAULT, name: "move", version: "v1.0" }),
    );
    const c = await start("replica-c");
    let closed = false;
    try {
      await c.dispatch.enqueue({ tasks });
      const r1 = connectRunner(runnerTransport(c.url), hello({ runnerId: "r-move", identifiers: ["move@v1.0"], slots: 2 }));
      runners.push(r1);
      const held = [await r1.take("assign"), await r1.take("assign")];
      // One result is reported before the stop and must be acknowledged during the drain.
      r1.send({ case: "completed", value: { lease: ref(held[0]!.lease!) } });
      const closing = c.close(5_000);
      expect((await r1.take("drain")).reason).not.toBe("");
      // A draining runner sends what it has, then ends its stream.
      r1.end();
      await closing;
      closed = true;
      expect(await r1.done).toBeUndefined();
      expect(r1.all("ack").map((x) => x.lease?.taskId)).toEqual([held[0]!.task!.taskId]);

      // The runner reconnects to replica B with the lease it still holds.
      const r2 = runner(b, { runnerId: "r-move", identifiers: ["move@v1.0"], slots: 2, resume: [ref(held[1]!.lease!)] });
      expect((await r2.take("welcome")).resumed.map((l) => l.taskId)).toEqual([held[1]!.task!.taskId]);
      const third = await r2.take("assign");
      r2.send({ case: "completed", value: { lease: ref(held[1]!.lease!) } });
      r2.send({ case: "completed", value: { lease: ref(third.lease!) } });
      await r2.take("ack");
      await r2.take("ack");
      for (const t of tasks) expect(ledger.task(t.taskId)?.state).toBe("computed");
      expect(ledger.results.filter((x) => x.result.taskId.startsWith("t-move") && x.result.outcome.case === "expired")).toEqual([]);
    } finally {
      if (!closed) await c.close();
    }
  });
});
