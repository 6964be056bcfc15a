// The batcher against an in-memory ledger: group commit, retries until durable, ready tasks
// enqueued and acknowledged on the next call, close failing what never left, and lanes: one team's
// fan-out does not hold up another team's results.
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

const fannedOut = (taskId: string, subtasks: number) =>
  create(TaskResultSchema, {
    taskId,
    attempt: 1,
    outcome: { case: "completed", value: { subtasks: Array.from({ length: subtasks }, (_, i) => ({ display: `${taskId}.${i}` })) } },
  });

/** A promise to hold a call or an enqueue on, and its release. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

function setup(
  ledger: Ledger,
  batchSize = 100,
  startHoldMs = 0,
  extra: { maxSubtasksPerCall?: number; enqueue?: (tasks: TaskEnvelope[]) => Promise<void> } = {},
) {
  const enqueued: TaskEnvelope[] = [];
  const batcher = createResultBatcher({
    ledger,
    brokerId: "b",
    windowMs: 5,
    batchSize,
    ackFlushMs: 10,
    startHoldMs,
    maxSubtasksPerCall: extra.maxSubtasksPerCall,
    enqueue: async (tasks) => {
      await extra.enqueue?.(tasks);
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

  it("answers a lone result the ledger rejects as invalid as INVALID, and fails its task, instead of retrying forever", async () => {
    const requests: ReportResultsRequest[] = [];
    const inner = okLedger(requests);
    const { batcher } = setup({
      async reportResults(req) {
        if (req.results.some((r) => r.outcome.case === "completed")) throw new ConnectError("bad", Code.InvalidArgument);
        return inner.reportResults(req);
      },
    });
    const outcome = await batcher.submit(completed("a"));
    expect(ResultStatus[outcome.status]).toBe("INVALID");
    expect(outcome.reason).toBe("the task's result could not be stored: job-service refused it (InvalidArgument: bad)");
    const failure = requests.at(-1)!.results[0]!.outcome;
    expect(failure.case === "failed" && [failure.value.error, failure.value.unrecoverable]).toEqual([outcome.reason, true]);
    await batcher.close();
  });

  it("isolates one poison result among many: the others are applied, its task fails, in O(log N) calls", async () => {
    const requests: ReportResultsRequest[] = [];
    let calls = 0;
    const inner = okLedger(requests);
    // job-service before it checked entries: one unstorable string fails the whole call.
    const { batcher } = setup({
      async reportResults(req) {
        calls++;
        const poisoned = req.results.some((r) => r.outcome.case === "completed" && r.outcome.value.display.includes("\0"));
        if (poisoned) throw new ConnectError("internal error", Code.Internal);
        return inner.reportResults(req);
      },
    }, 64);
    const ids = Array.from({ length: 64 }, (_, i) => `t${i}`);
    const results = ids.map((id) => completed(id));
    const poison = results[37]!.outcome;
    if (poison.case === "completed") poison.value.display = "x\0";
    const outcomes = await Promise.all(results.map((r) => batcher.submit(r)));
    expect(outcomes.filter((o) => o.status !== ResultStatus.APPLIED).map((o) => o.taskId)).toEqual(["t37"]);
    expect(outcomes[37]!.reason).toMatch(/^the task's result could not be stored: job-service refused it \(Internal: internal error\)$/);
    const applied = requests.flatMap((r) => r.results);
    expect(applied.filter((r) => r.outcome.case === "completed").map((r) => r.taskId).sort()).toEqual(ids.filter((id) => id !== "t37").sort());
    const failure = applied.find((r) => r.taskId === "t37")!.outcome;
    expect(failure.case === "failed" && failure.value.error).toBe(outcomes[37]!.reason);
    // 3 tries of the batch, two halves per level (log2 64 = 6), a probe and the failure.
    expect(calls).toBeLessThanOrEqual(3 + 2 * 6 + 2);
    await batcher.close();
  });

  it("keeps results behind a refused batch flowing: the next batch goes out once the bad entry is isolated", async () => {
    const requests: ReportResultsRequest[] = [];
    const inner = okLedger(requests);
    const { batcher } = setup({
      async reportResults(req) {
        if (req.results.some((r) => r.taskId === "poison" && r.outcome.case === "completed")) throw new ConnectError("no", Code.FailedPrecondition);
        return inner.reportResults(req);
      },
    }, 2);
    const outcomes = await Promise.all(["a", "poison", "b", "c", "d"].map((id) => batcher.submit(completed(id))));
    expect(outcomes.map((o) => `${o.taskId}:${ResultStatus[o.status]}`)).toEqual(["a:APPLIED", "poison:INVALID", "b:APPLIED", "c:APPLIED", "d:APPLIED"]);
    await batcher.close();
  });

  it("does not blame an entry while job-service fails every call: the results wait and are applied after", async () => {
    const requests: ReportResultsRequest[] = [];
    const inner = okLedger(requests);
    let broken = 12;
    const { batcher } = setup({
      async reportResults(req) {
        if (broken-- > 0) throw new ConnectError("internal error", Code.Internal);
        return inner.reportResults(req);
      },
    });
    const outcomes = await Promise.all(["a", "b", "c", "d"].map((id) => batcher.submit(completed(id))));
    expect(outcomes.map((o) => ResultStatus[o.status])).toEqual(["APPLIED", "APPLIED", "APPLIED", "APPLIED"]);
    expect(requests.flatMap((r) => r.results).every((r) => r.outcome.case === "completed")).toBe(true);
    await batcher.close();
  });

  it("says it is stalled while results cannot be delivered for longer than the timeout, and recovers", async () => {
    let down = true;
    let upAgain!: () => void;
    const changes: boolean[] = [];
    const stalledOnce = new Promise<void>((resolve) => (upAgain = resolve));
    const inner = okLedger([]);
    const batcher = createResultBatcher({
      ledger: {
        async reportResults(req) {
          if (down) throw new ConnectError("down", Code.Unavailable);
          return inner.reportResults(req);
        },
      },
      brokerId: "b",
      windowMs: 1,
      batchSize: 10,
      ackFlushMs: 10,
      enqueue: async () => {},
      logger: createLogger("test", "silent"),
      metrics: createBrokerMetrics(),
      stallTimeoutMs: 50,
      onStallChange: (stalled) => {
        changes.push(stalled);
        if (stalled) upAgain();
      },
    });
    expect(batcher.stalled).toBe(false);
    const outcome = batcher.submit(completed("a"));
    await stalledOnce;
    expect(batcher.stalled).toBe(true);
    down = false;
    expect((await outcome).status).toBe(ResultStatus.APPLIED);
    expect(batcher.stalled).toBe(false);
    expect(changes).toEqual([true, false]);
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
  it("applies another lane's result while a lane's fan-out is still being applied", async () => {
    const requests: ReportResultsRequest[] = [];
    const held = gate();
    const ok = okLedger(requests);
    const { batcher } = setup({
      async reportResults(req) {
        if (req.results.some((r) => r.taskId === "fan-out")) await held.opened;
        return ok.reportResults(req);
      },
    });
    const big = batcher.submit(fannedOut("fan-out", 10_000), "team-a");
    let bigDone = false;
    void big.then(() => (bigDone = true));
    const other = await batcher.submit(completed("ping"), "team-b");
    expect(other.status).toBe(ResultStatus.APPLIED);
    expect(bigDone).toBe(false);
    held.open();
    expect((await big).status).toBe(ResultStatus.APPLIED);
    await batcher.close();
  });

  it("answers another lane's result while a fan-out's ready tasks are still being enqueued", async () => {
    const requests: ReportResultsRequest[] = [];
    const held = gate();
    const children = Array.from({ length: 1_000 }, (_, i) => create(TaskEnvelopeSchema, { taskId: `child-${i}`, attempt: 1 }));
    const { batcher, enqueued } = setup(
      okLedger(requests, (req) => (req.results.some((r) => r.taskId === "fan-out") ? children : [])),
      100,
      0,
      { enqueue: (tasks) => (tasks.length > 1 ? held.opened : Promise.resolve()) },
    );
    const big = batcher.submit(fannedOut("fan-out", 1_000), "team-a");
    await expect.poll(() => requests.length).toBe(1);
    await batcher.submit(completed("ping"), "team-b");
    expect(enqueued).toHaveLength(0);
    held.open();
    await big;
    expect(enqueued).toHaveLength(1_000);
    await batcher.close();
  });

  it("sends a lane's results one call at a time, in order", async () => {
    const requests: ReportResultsRequest[] = [];
    const held = gate();
    let inCall = 0;
    let most = 0;
    const ok = okLedger(requests);
    const { batcher } = setup({
      async reportResults(req) {
        most = Math.max(most, ++inCall);
        if (req.results.some((r) => r.taskId === "a")) await held.opened;
        inCall--;
        return ok.reportResults(req);
      },
    });
    const first = batcher.submit(started("a"), "team-a");
    await expect.poll(() => inCall).toBe(1);
    const later = [batcher.submit(completed("a"), "team-a"), batcher.submit(started("b"), "team-a")];
    held.open();
    await Promise.all([first, ...later]);
    expect(most).toBe(1);
    expect(requests.map((r) => r.results.map((x) => `${x.taskId}:${x.outcome.case}`))).toEqual([["a:started"], ["a:completed", "b:started"]]);
    await batcher.close();
  });

  it("sends a result with more subtasks than a call carries on its own", async () => {
    const requests: ReportResultsRequest[] = [];
    const { batcher } = setup(okLedger(requests), 100, 0, { maxSubtasksPerCall: 2_000 });
    await Promise.all([
      batcher.submit(fannedOut("small-1", 10), "team-a"),
      batcher.submit(fannedOut("big", 5_000), "team-a"),
      batcher.submit(fannedOut("small-2", 10), "team-a"),
      batcher.submit(completed("other"), "team-b"),
    ]);
    const calls = requests.map((r) => r.results.map((x) => x.taskId));
    expect(calls).toContainEqual(["big"]);
    // Per lane, the order of submission.
    expect(calls.flat().filter((id) => id !== "other")).toEqual(["small-1", "big", "small-2"]);
    await batcher.close();
  });
});
