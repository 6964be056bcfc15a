// The batcher against an in-memory ledger: group commit, retries until durable, ready tasks
// enqueued and acknowledged on the next call, and close failing what never left.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  ReportResultsResponseSchema,
  ResultOutcomeSchema,
  ResultStatus,
  TaskEnvelopeSchema,
  TaskResultSchema,
  type ReportResultsRequest,
  type TaskEnvelope,
} from "@corral/proto";
import { createLogger } from "@corral/server-kit";
import { describe, expect, it } from "vitest";
import { createBrokerMetrics } from "./metrics.js";
import { createResultBatcher, type Ledger } from "./result-batcher.js";

const started = (taskId: string) =>
  create(TaskResultSchema, { taskId, attempt: 1, outcome: { case: "started", value: { runnerId: "r" } } });

const completed = (taskId: string) =>
  create(TaskResultSchema, { taskId, attempt: 1, outcome: { case: "completed", value: {} } });

function setup(ledger: Ledger, batchSize = 100, startHoldMs = 0) {
  const enqueued: TaskEnvelope[] = [];
  const batcher = createResultBatcher({
    ledger,
    brokerId: "b",
    windowMs: 5,
    batchSize,
    ackFlushMs: 10,
    startHoldMs,
    enqueue: async (tasks) => {
      enqueued.push(...tasks);
    },
    logger: createLogger("test", "silent"),
    metrics: createBrokerMetrics(),
  });
  return { batcher, enqueued };
}

function okLedger(requests: ReportResultsRequest[], ready: (req: ReportResultsRequest) => TaskEnvelope[] = () => []): Ledger {
  return {
    async reportResults(req) {
      requests.push(req);
      return create(ReportResultsResponseSchema, {
        outcomes: req.results.map((r) =>
          create(ResultOutcomeSchema, { taskId: r.taskId, attempt: r.attempt, status: ResultStatus.APPLIED }),
        ),
        ready: ready(req),
      });
    },
  };
}

describe("result batcher", () => {
  it("sends results submitted together in one call, in order", async () => {
    const requests: ReportResultsRequest[] = [];
    const { batcher } = setup(okLedger(requests));
    const outcomes = await Promise.all(["a", "b", "c"].map((id) => batcher.submit(started(id))));
    expect(outcomes.map((o) => o.taskId)).toEqual(["a", "b", "c"]);
    expect(requests).toHaveLength(1);
    expect(requests[0]!.results.map((r) => r.taskId)).toEqual(["a", "b", "c"]);
    expect(requests[0]!.brokerId).toBe("b");
    await batcher.close();
  });

  it("folds a start that has not left yet into its task's end", async () => {
    const requests: ReportResultsRequest[] = [];
    const { batcher } = setup(okLedger(requests));
    const failed = create(TaskResultSchema, { taskId: "b", attempt: 1, outcome: { case: "failed", value: { error: "x" } } });
    const outcomes = await Promise.all([
      batcher.submit(started("a")),
      batcher.submit(started("b")),
      batcher.submit(started("c")),
      batcher.submit(completed("a")),
      batcher.submit(failed),
    ]);
    expect(outcomes.map((o) => `${o.taskId}:${ResultStatus[o.status]}`)).toEqual([
      "a:APPLIED",
      "b:APPLIED",
      "c:APPLIED",
      "a:APPLIED",
      "b:APPLIED",
    ]);
    expect(requests).toHaveLength(1);
    const sent = requests[0]!.results;
    expect(sent.map((r) => `${r.taskId}:${r.outcome.case}`)).toEqual(["c:started", "a:completed", "b:failed"]);
    const a = sent[1]!.outcome;
    const b = sent[2]!.outcome;
    expect(a.case === "completed" && a.value.started?.runnerId).toBe("r");
    expect(b.case === "failed" && b.value.started?.runnerId).toBe("r");
    await batcher.close();
  });

  it("sends an end on its own when its start already left", async () => {
    const requests: ReportResultsRequest[] = [];
    const { batcher } = setup(okLedger(requests));
    await batcher.submit(started("a"));
    await batcher.submit(completed("a"));
    expect(requests.map((r) => r.results.map((x) => `${x.taskId}:${x.outcome.case}`))).toEqual([["a:started"], ["a:completed"]]);
    const end = requests[1]!.results[0]!.outcome;
    expect(end.case === "completed" && end.value.started).toBeUndefined();
    await batcher.close();
  });

  it("holds a start back until its task ends, then sends it inside the end", async () => {
    const requests: ReportResultsRequest[] = [];
    const { batcher } = setup(okLedger(requests), 100, 60_000);
    const start = batcher.submit(started("a"));
    await new Promise((r) => setTimeout(r, 30));
    expect(requests).toHaveLength(0);
    expect(batcher.pending).toBe(1);
    const [s, c] = await Promise.all([start, batcher.submit(completed("a"))]);
    expect([s.status, c.status]).toEqual([ResultStatus.APPLIED, ResultStatus.APPLIED]);
    expect(requests).toHaveLength(1);
    expect(requests[0]!.results.map((r) => `${r.taskId}:${r.outcome.case}`)).toEqual(["a:completed"]);
    await batcher.close();
  });

  it("sends a held start on its own once the hold time is over", async () => {
    const requests: ReportResultsRequest[] = [];
    const { batcher } = setup(okLedger(requests), 100, 40);
    const t0 = Date.now();
    const outcome = await batcher.submit(started("a"));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(39);
    expect(outcome.status).toBe(ResultStatus.APPLIED);
    expect(requests.map((r) => r.results.map((x) => x.taskId))).toEqual([["a"]]);
    await batcher.close();
  });

  it("fails held starts when it closes", async () => {
    const { batcher } = setup(okLedger([]), 100, 60_000);
    const start = batcher.submit(started("a"));
    await batcher.close();
    await expect(start).rejects.toThrow(/closed/);
  });

  it("splits at the batch size", async () => {
    const requests: ReportResultsRequest[] = [];
    const { batcher } = setup(okLedger(requests), 2);
    await Promise.all(["a", "b", "c", "d", "e"].map((id) => batcher.submit(started(id))));
    expect(requests.map((r) => r.results.length)).toEqual([2, 2, 1]);
    await batcher.close();
  });

  it("retries a failing ledger until the batch is durable", async () => {
    let failures = 3;
    const requests: ReportResultsRequest[] = [];
    const inner = okLedger(requests);
    const { batcher } = setup({
      async reportResults(req) {
        if (failures-- > 0) throw new ConnectError("down", Code.Unavailable);
        return inner.reportResults(req);
      },
    });
    const outcome = await batcher.submit(started("a"));
    expect(outcome.status).toBe(ResultStatus.APPLIED);
    expect(failures).toBe(-1);
    await batcher.close();
  });

  it("fails a batch the ledger rejects as invalid instead of retrying forever", async () => {
    const { batcher } = setup({
      async reportResults() {
        throw new ConnectError("bad", Code.InvalidArgument);
      },
    });
    await expect(batcher.submit(started("a"))).rejects.toMatchObject({ code: Code.InvalidArgument });
    await batcher.close();
  });

  it("enqueues ready tasks and acknowledges them on the next call", async () => {
    const requests: ReportResultsRequest[] = [];
    const next = create(TaskEnvelopeSchema, { taskId: "child", attempt: 1, clusterId: "c", jobId: "j", teamId: "t" });
    let secondCall!: () => void;
    const acked = new Promise<void>((resolve) => (secondCall = resolve));
    const inner = okLedger(requests, (req) => (req.results.length > 0 ? [next] : []));
    const { batcher, enqueued } = setup({
      async reportResults(req) {
        const res = await inner.reportResults(req);
        if (requests.length === 2) secondCall();
        return res;
      },
    });
    await batcher.submit(started("parent"));
    expect(enqueued.map((t) => t.taskId)).toEqual(["child"]);
    // With no result to ride on, the acks go out alone shortly after.
    await acked;
    expect(requests[1]!.results).toEqual([]);
    expect(requests[1]!.dispatched.map((d) => d.taskId)).toEqual(["child"]);
    await batcher.close();
  });

  it("fails pending results with UNAVAILABLE on close", async () => {
    let called!: () => void;
    const inFlight = new Promise<void>((resolve) => (called = resolve));
    const { batcher } = setup({
      reportResults: () => {
        called();
        return new Promise(() => {});
      },
    });
    const first = batcher.submit(started("a"));
    await inFlight;
    const second = batcher.submit(started("b"));
    await batcher.close();
    await expect(second).rejects.toMatchObject({ code: Code.Unavailable });
    await expect(batcher.submit(started("c"))).rejects.toMatchObject({ code: Code.Unavailable });
    void first.catch(() => {});
  });
});
