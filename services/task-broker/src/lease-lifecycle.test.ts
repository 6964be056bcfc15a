// Leases over time against the real Redis: expiry and redelivery, heartbeats, resuming after a
// reconnect, results surviving a failing ledger, revocation, presence, sessions and drain.
import { Code } from "@connectrpc/connect";
import { NodeState, PresenceEvent, type PresenceReport } from "@corral/proto";
import { testRedisPrefix } from "@corral/server-kit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestLedger, type TestLedger } from "./test-support/test-ledger.js";
import {
  CLUSTERS,
  connectRunner,
  dropRedisPrefix,
  eventually,
  hello,
  runnerTransport,
  startBrokerServer,
  type BrokerServer,
  type TestRunner,
} from "./test-support/harness.js";

const DEFAULT = CLUSTERS["team-1"]![""]!.id;
const GPU = CLUSTERS["team-1"]!.gpu!.id;
const LEASE_MS = 1_500;

const prefix = testRedisPrefix("broker-leases");
let ledger: TestLedger;
let srv: BrokerServer;
const presence: PresenceReport[] = [];
let presenceFailures = 0;
const runners: TestRunner[] = [];

function runner(h: Parameters<typeof hello>[0]): TestRunner {
  const r = connectRunner(runnerTransport(srv.url), hello(h));
  runners.push(r);
  return r;
}

const ref = (l: { taskId: string; attempt: number; token: string }) => ({ taskId: l.taskId, attempt: l.attempt, token: l.token });

beforeAll(async () => {
  ledger = createTestLedger();
  srv = await startBrokerServer({
    prefix,
    ledger,
    leaseDurationMs: LEASE_MS,
    reapIntervalMs: 50,
    presenceThrottleMs: 0,
    pollIntervalMs: 500,
    presence: {
      async report(reports) {
        if (presenceFailures > 0) {
          presenceFailures--;
          throw new Error("registry down (test)");
        }
        presence.push(...reports);
        return { keepsInstances: true };
      },
    },
  });
});

afterAll(async () => {
  for (const r of runners) r.kill();
  await srv.close();
  await dropRedisPrefix(prefix);
});

describe("leases", () => {
  it("redelivers the task of a killed runner after its lease expires and rejects the late result", async () => {
    const env = ledger.add({ taskId: "t-killed", clusterId: DEFAULT, name: "crash", version: "v1.0" });
    await srv.dispatch.enqueue({ tasks: [env] });
    const doomed = runner({ runnerId: "r-doomed", identifiers: ["crash@v1.0"] });
    const first = await doomed.take("assign");
    expect(first.lease?.attempt).toBe(1);
    doomed.kill();

    const heir = runner({ runnerId: "r-heir", identifiers: ["crash@v1.0"] });
    const second = await heir.take("assign");
    expect(second.task?.taskId).toBe("t-killed");
    expect(second.lease?.attempt).toBe(2);
    expect(ledger.results.some((x) => x.result.taskId === "t-killed" && x.result.outcome.case === "expired")).toBe(true);

    // The crashed runner comes back: its lease is gone, and its result is rejected.
    const back = runner({ runnerId: "r-doomed", identifiers: ["crash@v1.0"], resume: [ref(first.lease!)] });
    expect((await back.take("welcome")).resumed).toEqual([]);
    back.send({ case: "completed", value: { lease: ref(first.lease!) } });
    const late = await back.take("ack");
    expect(late.accepted).toBe(false);

    heir.send({ case: "completed", value: { lease: ref(second.lease!) } });
    expect((await heir.take("ack")).accepted).toBe(true);
    expect(ledger.task("t-killed")?.state).toBe("computed");
  });

  it("keeps leases alive with heartbeats and cancels a lease that was not extended", async () => {
    await srv.dispatch.enqueue({ tasks: [ledger.add({ taskId: "t-beat", clusterId: DEFAULT, name: "beat", version: "v1.0" })] });
    const r = runner({ runnerId: "r-beat", identifiers: ["beat@v1.0"] });
    const a = await r.take("assign");
    // Heartbeat for two lease durations: the lease must survive all of them.
    const until = Date.now() + LEASE_MS * 2;
    while (Date.now() < until) {
      r.send({ case: "heartbeat", value: {} });
      await new Promise((res) => setTimeout(res, LEASE_MS / 4));
    }
    expect(r.all("cancel")).toEqual([]);
    r.send({ case: "completed", value: { lease: ref(a.lease!) } });
    expect((await r.take("ack")).accepted).toBe(true);
    expect(ledger.results.filter((x) => x.result.taskId === "t-beat").map((x) => x.result.outcome.case)).toEqual([
      "started",
      "completed",
    ]);

    await srv.dispatch.enqueue({ tasks: [ledger.add({ taskId: "t-silent", clusterId: DEFAULT, name: "silent", version: "v1.0" })] });
    const silent = runner({ runnerId: "r-silent", identifiers: ["silent@v1.0"] });
    const s = await silent.take("assign");
    const cancel = await silent.take("cancel");
    expect(cancel.lease?.token).toBe(s.lease?.token);
  });

  it("lets a reconnecting runner keep its leases and report them", async () => {
    await srv.dispatch.enqueue({ tasks: [ledger.add({ taskId: "t-resume", clusterId: DEFAULT, name: "resume", version: "v1.0" })] });
    const r1 = runner({ runnerId: "r-resume", identifiers: ["resume@v1.0"], slots: 2 });
    const a = await r1.take("assign");
    r1.kill();
    await r1.done;
    const r2 = runner({ runnerId: "r-resume", identifiers: ["resume@v1.0"], slots: 2, resume: [ref(a.lease!)] });
    const welcome = await r2.take("welcome");
    expect(welcome.resumed.map((l) => l.taskId)).toEqual(["t-resume"]);
    const session = srv.broker.sessions().find((s) => s.id === welcome.sessionId)!;
    expect(session.credit).toBe(1);
    // The resumed lease still knows its task's identifier and job (presence shows them).
    expect([...session.leases.values()].map((l) => [l.taskId, l.queue, l.jobId])).toEqual([["t-resume", "resume:v1.0", "job-1"]]);
    r2.send({ case: "completed", value: { lease: ref(a.lease!) } });
    expect((await r2.take("ack")).accepted).toBe(true);
    expect(ledger.task("t-resume")?.state).toBe("computed");
    expect(ledger.results.some((x) => x.result.taskId === "t-resume" && x.result.outcome.case === "expired")).toBe(false);
  });

  it("retries the ledger until a result is durable, then acknowledges it", async () => {
    await srv.dispatch.enqueue({ tasks: [ledger.add({ taskId: "t-retry", clusterId: DEFAULT, name: "retry", version: "v1.0" })] });
    const r = runner({ runnerId: "r-retry", identifiers: ["retry@v1.0"] });
    const a = await r.take("assign");
    await ledger.until(() => ledger.task("t-retry")?.state === "running");
    const callsBefore = ledger.calls;
    ledger.failNext(3);
    r.send({ case: "failed", value: { lease: ref(a.lease!), error: "boom", countsAsRetry: true } });
    expect((await r.take("ack")).accepted).toBe(true);
    expect(ledger.calls - callsBefore).toBeGreaterThanOrEqual(4);
    expect(ledger.task("t-retry")?.state).toBe("failed");
  });

  it("cancels leases of a revoked job and drops its queued entries", async () => {
    const tasks = [
      ledger.add({ taskId: "t-rev-1", jobId: "job-rev", clusterId: DEFAULT, name: "rev", version: "v1.0" }),
      ledger.add({ taskId: "t-rev-2", jobId: "job-rev", clusterId: DEFAULT, name: "rev", version: "v1.0" }),
    ];
    await srv.dispatch.enqueue({ tasks });
    const r = runner({ runnerId: "r-rev", identifiers: ["rev@v1.0"] });
    const a = await r.take("assign");
    const res = await srv.dispatch.revoke({ teamId: "team-1", jobId: "job-rev", reason: "user canceled" });
    expect(res.canceledLeases).toBe(1);
    const cancel = await r.take("cancel");
    expect(cancel.lease?.taskId).toBe(a.task?.taskId);
    expect(cancel.reason).toBe("user canceled");

    // The second task of the job is dropped when claimed; a task of another job still runs.
    await srv.dispatch.enqueue({ tasks: [ledger.add({ taskId: "t-rev-other", jobId: "job-ok", clusterId: DEFAULT, name: "rev", version: "v1.0" })] });
    r.send({ case: "credit", value: { n: 1 } });
    expect((await r.take("assign")).task?.taskId).toBe("t-rev-other");
    expect(r.all("assign").map((x) => x.task?.taskId)).not.toContain(tasks.find((t) => t.taskId !== a.task?.taskId)!.taskId);

    // Tasks of the job queued after the revocation (the job was retried) run again.
    await srv.dispatch.enqueue({
      tasks: [ledger.add({ taskId: "t-rev-later", jobId: "job-rev", clusterId: DEFAULT, name: "rev", version: "v1.0" })],
    });
    r.send({ case: "credit", value: { n: 1 } });
    expect((await r.take("assign")).task?.taskId).toBe("t-rev-later");
  });

  it("cancels an assignment whose job job-service reports canceled when it starts", async () => {
    ledger.cancelJob("job-gone");
    await srv.dispatch.enqueue({
      tasks: [ledger.add({ taskId: "t-gone", jobId: "job-gone", clusterId: DEFAULT, name: "gone", version: "v1.0" })],
    });
    const r = runner({ runnerId: "r-gone", identifiers: ["gone@v1.0"] });
    const a = await r.take("assign");
    const cancel = await r.take("cancel");
    expect(cancel.lease?.token).toBe(a.lease?.token);
    expect(cancel.reason).toBe("job canceled");
  });

  it("counts assignments, expiries and dispatch latency in its metrics", async () => {
    const text = await srv.broker.metrics.registry.metrics();
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? 0);
    expect(value("corral_broker_assignments_total")).toBeGreaterThan(0);
    expect(value("corral_broker_leases_expired_total")).toBeGreaterThan(0);
    expect(value("corral_broker_dispatch_latency_seconds_count")).toBeGreaterThan(0);
  });

  it("reports presence on connect, busy-slot change and disconnect, and survives a failing registry", async () => {
    presenceFailures = 1;
    const r = runner({ runnerId: "r-presence", identifiers: ["presence@v1.0"], slots: 2 });
    await r.take("welcome");
    // The first report failed (logged); the runner keeps working.
    await srv.dispatch.enqueue({ tasks: [ledger.add({ taskId: "t-presence", clusterId: DEFAULT, name: "presence", version: "v1.0" })] });
    const a = await r.take("assign");
    // Presence reports are coalesced (up to 2 s), longer than the test's lease: keep it alive.
    const beat = setInterval(() => r.send({ case: "heartbeat", value: {} }), LEASE_MS / 3);
    try {
      await eventually(() => presence.some((p) => p.node?.id === "r-presence" && p.node.busySlots === 1));
    } finally {
      clearInterval(beat);
    }
    const busy = presence.find((p) => p.node?.id === "r-presence" && p.node.busySlots === 1)!;
    expect(busy.node!.runningTasks.map((t) => [t.taskId, t.attempt, t.identifier?.name, t.identifier?.version])).toEqual([
      ["t-presence", 1, "presence", "v1.0"],
    ]);
    r.send({ case: "completed", value: { lease: ref(a.lease!) } });
    await r.take("ack");
    // The lease released: the next report names no running task.
    await eventually(() => presence.some((p) => p.node?.id === "r-presence" && p.node.busySlots === 0 && p.node.runningTasks.length === 0 && p.event === PresenceEvent.UPDATED));
    r.end();
    await r.done;
    await eventually(() =>
      presence.some((p) => p.node?.id === "r-presence" && p.event === PresenceEvent.DISCONNECTED && p.node.state === NodeState.OFFLINE),
    );
    const mine = presence.filter((p) => p.node?.id === "r-presence");
    expect(mine.every((p) => p.teamId === "team-1" && p.node?.clusterId === DEFAULT)).toBe(true);
  });

  it("lists sessions", async () => {
    const r = runner({ runnerId: "r-listed", identifiers: ["listed@v2.3"], slots: 3 });
    const w = await r.take("welcome");
    const res = await srv.dispatch.listSessions({ clusterId: DEFAULT });
    const s = res.sessions.find((x) => x.sessionId === w.sessionId);
    expect(s?.runnerId).toBe("r-listed");
    expect(s?.slots).toBe(3);
    expect(s?.credit).toBe(3);
    expect(s?.brokerId).toBe(srv.broker.brokerId);
    expect(s?.identifiers.map((i) => `${i.name}@${i.version}`)).toEqual(["listed@v2.3"]);
    expect((await srv.dispatch.listSessions({ clusterId: "c-nobody" })).sessions).toEqual([]);
  });

  it("lists sessions page by page, in session id order", async () => {
    const paged = [1, 2, 3, 4, 5].map((i) => runner({ runnerId: `r-paged-${i}`, identifiers: ["paged@v1.0"], slots: 1, clusterSlug: "gpu" }));
    await Promise.all(paged.map((r) => r.take("welcome")));
    const all = (await srv.dispatch.listSessions({ clusterId: GPU })).sessions.map((s) => s.sessionId);
    expect(all).toEqual([...all].sort());
    const seen: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const res = await srv.dispatch.listSessions({ clusterId: GPU, pageSize: 2, pageToken });
      expect(res.sessions.length).toBeLessThanOrEqual(2);
      seen.push(...res.sessions.map((s) => s.sessionId));
      pageToken = res.nextPageToken;
      pages++;
    } while (pageToken !== "");
    expect(seen).toEqual(all);
    expect(pages).toBe(Math.ceil(all.length / 2));
    await expect(srv.dispatch.listSessions({ clusterId: GPU, pageSize: 2, pageToken: "%%%" })).rejects.toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: expect.stringContaining("page_token"),
    });
    for (const r of paged) r.end();
  });

  it("answers PERMISSION_DENIED to a team key on DispatchService", async () => {
    const { createClient } = await import("@connectrpc/connect");
    const { DispatchService } = await import("@corral/proto");
    const client = createClient(DispatchService, runnerTransport(srv.url));
    await expect(client.getQueueStats({})).rejects.toMatchObject({ code: Code.PermissionDenied });
  });
});
