// The Work stream end to end over HTTP/2 against the real Redis: Hello/Welcome, routing by
// cluster, identifier and version, credit, results and acks, and protocol violations.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { ResultStatus, TaskBrokerService, type WorkRequest, type WorkResponse } from "@corral/proto";
import { testRedisPrefix } from "@corral/server-kit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestLedger, type TestLedger } from "./test-support/test-ledger.js";
import {
  CLUSTERS,
  connectRunner,
  dropRedisPrefix,
  GPU_RUNNER_KEY,
  hello,
  OTHER_TEAM_KEY,
  runnerTransport,
  startBrokerServer,
  type BrokerServer,
  type TestRunner,
} from "./test-support/harness.js";

const DEFAULT = CLUSTERS["team-1"]![""]!.id;
const GPU = CLUSTERS["team-1"]!.gpu!.id;

const prefix = testRedisPrefix("broker-work");
let ledger: TestLedger;
let srv: BrokerServer;
const runners: TestRunner[] = [];

function runner(h: Parameters<typeof hello>[0], key?: string): TestRunner {
  const r = connectRunner(runnerTransport(srv.url, key), hello(h));
  runners.push(r);
  return r;
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
  srv = await startBrokerServer({ prefix, ledger, leaseDurationMs: 10_000, pollIntervalMs: 300, helloTimeoutMs: 1_000 });
});

afterAll(async () => {
  for (const r of runners) r.kill();
  await srv.close();
  await dropRedisPrefix(prefix);
});

describe("Work", () => {
  it("welcomes a runner, assigns a queued task and acknowledges its result", async () => {
    await enqueue({ taskId: "t-basic", clusterId: DEFAULT, name: "basic", version: "v1.0" });
    const r = runner({ runnerId: "r-basic", identifiers: ["basic@v1.0"], slots: 1 });
    const welcome = await r.take("welcome");
    expect(welcome.sessionId).not.toBe("");
    expect(welcome.clusterId).toBe(DEFAULT);
    expect(Number(welcome.leaseDuration?.seconds)).toBe(10);
    const assign = await r.take("assign");
    expect(assign.task?.taskId).toBe("t-basic");
    expect(assign.lease?.attempt).toBe(1);
    r.send({ case: "completed", value: { lease: { taskId: "t-basic", attempt: 1, token: assign.lease!.token }, display: "ok" } });
    const ack = await r.take("ack");
    expect(ack.accepted).toBe(true);
    expect(ack.lease?.taskId).toBe("t-basic");
    const outcomes = ledger.results.filter((x) => x.result.taskId === "t-basic").map((x) => x.result.outcome.case);
    expect(outcomes).toEqual(["started", "completed"]);
    expect(ledger.task("t-basic")?.state).toBe("computed");
  });

  it("routes by cluster, identifier and version", async () => {
    await enqueue(
      { taskId: "t-v10", clusterId: DEFAULT, name: "route", version: "v1.0" },
      { taskId: "t-v12", clusterId: DEFAULT, name: "route", version: "v1.2" },
      { taskId: "t-v15", clusterId: DEFAULT, name: "route", version: "v1.5" },
      { taskId: "t-v20", clusterId: DEFAULT, name: "route", version: "v2.0" },
      { taskId: "t-gpu", clusterId: GPU, name: "route", version: "v1.0" },
      { taskId: "t-other", clusterId: DEFAULT, name: "other", version: "v1.0" },
    );
    const r = runner({ runnerId: "r-route", identifiers: ["route@v1.3"], slots: 10 });
    await r.take("welcome");
    const got = [(await r.take("assign")).task!.taskId, (await r.take("assign")).task!.taskId].sort();
    expect(got).toEqual(["t-v10", "t-v12"]);

    const gpu = runner({ runnerId: "r-gpu", identifiers: ["route@v1.9"], slots: 10, clusterSlug: "gpu" });
    expect((await gpu.take("welcome")).clusterId).toBe(GPU);
    expect((await gpu.take("assign")).task!.taskId).toBe("t-gpu");

    // v1.5 needs minor >= 5; v2.0 needs major 2; `other` nobody registered: all stay queued.
    const stats = await srv.dispatch.getQueueStats({ clusterId: DEFAULT });
    const lag = (name: string, version: string) =>
      Number(stats.queues.find((q) => q.identifier?.name === name && q.identifier.version === version)?.lag ?? -1);
    expect(lag("route", "v1.5")).toBe(1);
    expect(lag("route", "v2.0")).toBe(1);
    expect(lag("other", "v1.0")).toBe(1);
    // Consumers are the runner sessions that read a queue: r-route reads route v1.0 to v1.3.
    const consumers = (name: string, version: string) =>
      stats.queues.find((q) => q.identifier?.name === name && q.identifier.version === version)?.consumers;
    expect([consumers("route", "v1.0"), consumers("route", "v1.5"), consumers("other", "v1.0")]).toEqual([1, 0, 0]);

    // A runner of another team never sees team-1's clusters.
    const stranger = runner({ runnerId: "r-stranger", identifiers: ["route@v1.9"], slots: 10 }, OTHER_TEAM_KEY);
    expect((await stranger.take("welcome")).clusterId).toBe(CLUSTERS["team-2"]![""]!.id);

    const v2 = runner({ runnerId: "r-v2", identifiers: ["route@v2.0", "other@v1.0"], slots: 10 });
    await v2.take("welcome");
    const v2got = [(await v2.take("assign")).task!.taskId, (await v2.take("assign")).task!.taskId].sort();
    expect(v2got).toEqual(["t-other", "t-v20"]);
    expect(r.all("assign").map((a) => a.task!.taskId).sort()).toEqual(["t-v10", "t-v12"]);
    expect(stranger.all("assign")).toEqual([]);
  });

  it("never assigns more than the open credit", async () => {
    await enqueue(
      ...Array.from({ length: 5 }, (_, i) => ({ taskId: `t-credit-${i}`, clusterId: DEFAULT, name: "credit", version: "v1.0" })),
    );
    const r = runner({ runnerId: "r-credit", identifiers: ["credit@v1.0"], slots: 2 });
    await r.take("welcome");
    const a1 = await r.take("assign");
    const a2 = await r.take("assign");
    // The other three wait for credit: the queue still holds them undelivered.
    await expectLag("credit", "v1.0", 3);
    expect(r.all("assign")).toHaveLength(2);
    r.send({ case: "credit", value: { n: 1 } });
    await r.take("assign");
    await expectLag("credit", "v1.0", 2);
    expect(r.all("assign")).toHaveLength(3);
    for (const a of [a1, a2]) r.send({ case: "completed", value: { lease: { taskId: a.lease!.taskId, attempt: a.lease!.attempt, token: a.lease!.token } } });
    await r.take("ack");
    await r.take("ack");
    expect(r.all("assign")).toHaveLength(3);
  });

  it("hands back entries it read beyond a runner's credit, so other runners get them", async () => {
    await enqueue(
      { taskId: "t-over-0", clusterId: DEFAULT, name: "over", version: "v1.0" },
      { taskId: "t-over-1", clusterId: DEFAULT, name: "over", version: "v1.1" },
    );
    // One read takes an entry from each of its two streams, but the runner has credit for one.
    const a = runner({ runnerId: "r-over-a", identifiers: ["over@v1.1"], slots: 1 });
    expect((await a.take("assign")).task!.taskId).toBe("t-over-0");
    const b = runner({ runnerId: "r-over-b", identifiers: ["over@v1.1", "unrelated@v1.0"], slots: 1 });
    expect((await b.take("assign")).task!.taskId).toBe("t-over-1");
    expect(a.all("assign")).toHaveLength(1);
  });

  it("keeps a task queued until a capable runner connects", async () => {
    await enqueue({ taskId: "t-wait", clusterId: DEFAULT, name: "late", version: "v3.1" });
    const wrong = runner({ runnerId: "r-wrong", identifiers: ["late@v3.0"], slots: 1 });
    await wrong.take("welcome");
    await expectLag("late", "v3.1", 1);
    const right = runner({ runnerId: "r-right", identifiers: ["late@v3.4"], slots: 1 });
    await right.take("welcome");
    expect((await right.take("assign")).task!.taskId).toBe("t-wait");
    expect(wrong.all("assign")).toEqual([]);
  });

  it("answers NOT_FOUND for an unknown cluster", async () => {
    const r = runner({ runnerId: "r-nocluster", identifiers: ["x@v1.0"], clusterSlug: "nope" });
    const err = await r.take("error");
    expect(err.code).toBe(Code.NotFound);
    expect((await r.done)?.code).toBe(Code.NotFound);
  });

  it("lets a runner-scoped key say Hello only to its cluster", async () => {
    const wrong = runner({ runnerId: "r-scoped-wrong", identifiers: ["x@v1.0"] }, GPU_RUNNER_KEY);
    expect((await wrong.take("error")).code).toBe(Code.PermissionDenied);
    expect((await wrong.done)?.code).toBe(Code.PermissionDenied);
    const right = runner({ runnerId: "r-scoped-right", identifiers: ["x@v1.0"], clusterSlug: "gpu" }, GPU_RUNNER_KEY);
    expect((await right.take("welcome")).clusterId).toBe(GPU);
  });

  it("ends a stream that never says Hello", async () => {
    const client = createClient(TaskBrokerService, runnerTransport(srv.url));
    const silent = (async function* (): AsyncGenerator<WorkRequest> {
      await new Promise(() => {});
    })();
    const answers: WorkResponse[] = [];
    const err = await (async () => {
      try {
        for await (const m of client.work(silent)) answers.push(m);
      } catch (e) {
        return ConnectError.from(e);
      }
      return undefined;
    })();
    expect(err?.code).toBe(Code.DeadlineExceeded);
    expect(answers.map((m) => m.message.case)).toEqual(["error"]);
  });

  it("ends a stream whose first message is not Hello, and one that sends Hello twice", async () => {
    const r = connectRunner(runnerTransport(srv.url), { case: "heartbeat", value: {} } as never);
    runners.push(r);
    expect((await r.done)?.code).toBe(Code.InvalidArgument);

    const twice = runner({ runnerId: "r-twice", identifiers: ["x@v1.0"] });
    await twice.take("welcome");
    twice.send(hello({ runnerId: "r-twice", identifiers: ["x@v1.0"] }));
    expect((await twice.take("error")).code).toBe(Code.FailedPrecondition);
    expect((await twice.done)?.code).toBe(Code.FailedPrecondition);
  });

  it("ends a stream that reports a lease it does not hold or overflows its credit, leaving others alone", async () => {
    const bystander = runner({ runnerId: "r-bystander", identifiers: ["calm@v1.0"], slots: 1 });
    await bystander.take("welcome");

    const liar = runner({ runnerId: "r-liar", identifiers: ["calm@v1.0"], slots: 1 });
    await liar.take("welcome");
    liar.send({ case: "completed", value: { lease: { taskId: "nope", attempt: 1, token: "forged" } } });
    expect((await liar.take("error")).code).toBe(Code.FailedPrecondition);
    expect((await liar.done)?.code).toBe(Code.FailedPrecondition);

    const greedy = runner({ runnerId: "r-greedy", identifiers: ["calm@v1.0"], slots: 2 });
    await greedy.take("welcome");
    greedy.send({ case: "credit", value: { n: 3 } });
    expect((await greedy.take("error")).code).toBe(Code.ResourceExhausted);
    expect((await greedy.done)?.code).toBe(Code.ResourceExhausted);

    await enqueue({ taskId: "t-calm", clusterId: DEFAULT, name: "calm", version: "v1.0" });
    expect((await bystander.take("assign")).task!.taskId).toBe("t-calm");
  });

  it("takes several runner messages in one batch and sends batches to a runner that reads them", async () => {
    await enqueue(
      { taskId: "t-batch-1", clusterId: DEFAULT, name: "batched", version: "v1.0" },
      { taskId: "t-batch-2", clusterId: DEFAULT, name: "batched", version: "v1.0" },
      { taskId: "t-batch-3", clusterId: DEFAULT, name: "batched", version: "v1.0" },
    );
    const h = hello({ runnerId: "r-batch", identifiers: ["batched@v1.0"], slots: 3 });
    const r = connectRunner(runnerTransport(srv.url), { ...h, value: { ...h.value, batches: true } });
    runners.push(r);
    expect((await r.take("welcome")).batches).toBe(true);
    // The three assignments come in one batch or several; each is an Assign.
    const assigns: NonNullable<WorkResponse["message"]["value"]>[] = [];
    while (assigns.length < 3) {
      const batch = await r.take("batch", 5_000).catch(() => undefined);
      if (batch) assigns.push(...batch.messages.map((m) => m.message.value!));
      else assigns.push(await r.take("assign"));
    }
    const leases = assigns.map((a) => (a as { lease: { taskId: string; attempt: number; token: string } }).lease);
    expect(leases.map((l) => l.taskId).sort()).toEqual(["t-batch-1", "t-batch-2", "t-batch-3"]);
    r.send({
      case: "batch",
      value: {
        messages: leases.map((lease) => ({ message: { case: "completed" as const, value: { lease } } })),
      },
    });
    await until(() => ["t-batch-1", "t-batch-2", "t-batch-3"].every((id) => ledger.task(id)?.state === "computed"));
  });

  it("ends a stream whose batch holds a Hello", async () => {
    const r = runner({ runnerId: "r-batch-hello", identifiers: ["x@v1.0"] });
    await r.take("welcome");
    r.send({ case: "batch", value: { messages: [{ message: hello({ runnerId: "r-batch-hello", identifiers: ["x@v1.0"] }) }] } });
    expect((await r.take("error")).code).toBe(Code.InvalidArgument);
    expect((await r.done)?.code).toBe(Code.InvalidArgument);
  });

  it("validates every message of a batch, naming the field inside the batch", async () => {
    // Protovalidate's own plan stops at the batch (a WorkRequest inside a WorkRequest).
    const r = runner({ runnerId: "r-batch-invalid", identifiers: ["x@v1.0"] });
    await r.take("welcome");
    r.send({
      case: "batch",
      value: {
        messages: [
          { message: { case: "heartbeat", value: {} } },
          { message: { case: "completed", value: { lease: { taskId: "t".repeat(65), attempt: 1, token: "x" } } } },
        ],
      },
    });
    const error = await r.take("error");
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.message).toContain("batch.messages[1].completed.lease.task_id");
    expect((await r.done)?.code).toBe(Code.InvalidArgument);
  });

  it("answers INVALID_ARGUMENT to a message that breaks the validation rules", async () => {
    const r = runner({ runnerId: "r-invalid", identifiers: ["x@v1.0"], slots: 1 });
    await r.take("welcome");
    r.send({ case: "credit", value: { n: 0 } });
    expect((await r.take("error")).code).toBe(Code.InvalidArgument);
    expect((await r.done)?.code).toBe(Code.InvalidArgument);

    const bad = runner({ runnerId: "r-badversion", identifiers: ["x@1.0"] });
    expect((await bad.take("error")).code).toBe(Code.InvalidArgument);
    expect((await bad.done)?.code).toBe(Code.InvalidArgument);
  });

  it("answers UNAUTHENTICATED without a valid key", async () => {
    const r = runner({ runnerId: "r-nokey", identifiers: ["x@v1.0"] }, "corral_nobody_cccccccccccccccccccc");
    expect((await r.done)?.code).toBe(Code.Unauthenticated);
  });

  it("runs duplicate enqueues once and counts them", async () => {
    const t = ledger.add({ taskId: "t-dup", clusterId: DEFAULT, name: "dup", version: "v1.0" });
    const first = await srv.dispatch.enqueue({ tasks: [t, t] });
    const again = await srv.dispatch.enqueue({ tasks: [t] });
    expect(first.enqueuedCount).toBe(1);
    expect(first.duplicateCount).toBe(1);
    expect(again.duplicateCount).toBe(1);
    const r = runner({ runnerId: "r-dup", identifiers: ["dup@v1.0"], slots: 5 });
    await r.take("welcome");
    const a = await r.take("assign");
    r.send({ case: "completed", value: { lease: { taskId: a.lease!.taskId, attempt: a.lease!.attempt, token: a.lease!.token } } });
    await r.take("ack");
    // An outbox re-send after completion is a duplicate too.
    expect((await srv.dispatch.enqueue({ tasks: [t] })).duplicateCount).toBe(1);
    await expectLag("dup", "v1.0", 0);
    expect(r.all("assign")).toHaveLength(1);
    expect(ledger.results.filter((x) => x.result.taskId === "t-dup" && x.status === ResultStatus.APPLIED)).toHaveLength(2);
  });
});

async function expectLag(name: string, version: string, lag: number) {
  const stats = await srv.dispatch.getQueueStats({ clusterId: DEFAULT });
  const q = stats.queues.find((s) => s.identifier?.name === name && s.identifier.version === version);
  expect(Number(q?.lag ?? -1)).toBe(lag);
}
