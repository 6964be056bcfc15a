// One team's huge fan-out must not stall another team: over HTTP/2 and the real Redis, a result
// carrying 10,000 subtasks is held inside job-service (a test ledger that answers it only when
// told), and another team's task, enqueued after it, is still assigned, reported and acknowledged.
import { create } from "@bufbuild/protobuf";
import { ResultStatus, type ReportResultsRequest, type TaskEnvelope } from "@corral/proto";
import { ReportResultsResponseSchema } from "@corral/proto";
import { testRedisPrefix } from "@corral/server-kit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Ledger } from "./result-batcher.js";
import { createTestLedger, type TestLedger } from "./test-support/test-ledger.js";
import {
  CLUSTERS,
  connectRunner,
  dropRedisPrefix,
  eventually,
  hello,
  OTHER_TEAM_KEY,
  runnerTransport,
  startBrokerServer,
  type BrokerServer,
  type TestRunner,
} from "./test-support/harness.js";

const TEAM_1 = CLUSTERS["team-1"]![""]!.id;
const TEAM_2 = CLUSTERS["team-2"]![""]!.id;
const FAN_OUT = 10_000;

const prefix = testRedisPrefix("broker-fairness");
let ledger: TestLedger;
let srv: BrokerServer;
const runners: TestRunner[] = [];
/** Opens the held ReportResults call that carries the fan-out. */
let releaseFanOut!: () => void;
const fanOutHeld = new Promise<void>((resolve) => (releaseFanOut = resolve));
let fanOutArrived = false;

/**
 * The test ledger, except that the call carrying the fan-out's result waits for `releaseFanOut`
 * (as a long transaction would), and answers the 10,000 subtasks as ready.
 */
function holdingLedger(inner: TestLedger): Ledger {
  return {
    async reportResults(request: ReportResultsRequest) {
      const fanOut = request.results.find((r) => r.taskId === "fan-out" && r.outcome.case === "completed");
      if (!fanOut) return inner.reportResults(request);
      fanOutArrived = true;
      await fanOutHeld;
      const response = await inner.reportResults(request);
      const children: TaskEnvelope[] = [];
      for (let i = 0; i < FAN_OUT; i++) {
        children.push(inner.add({ taskId: `child-${i}`, clusterId: TEAM_1, name: "child", version: "v1.0", jobId: "job-fan" }));
      }
      return create(ReportResultsResponseSchema, { outcomes: response.outcomes, ready: [...response.ready, ...children] });
    },
  };
}

function runner(h: Parameters<typeof hello>[0], key?: string): TestRunner {
  const r = connectRunner(runnerTransport(srv.url, key), hello(h));
  runners.push(r);
  return r;
}

beforeAll(async () => {
  ledger = createTestLedger();
  srv = await startBrokerServer({ prefix, ledger: holdingLedger(ledger), leaseDurationMs: 30_000, pollIntervalMs: 300 });
});

afterAll(async () => {
  releaseFanOut();
  for (const r of runners) r.kill();
  await srv.close();
  await dropRedisPrefix(prefix);
});

describe("fairness across teams", () => {
  it("acknowledges another team's result while a 10,000-subtask result is still being applied", async () => {
    const big = runner({ runnerId: "r-fan", identifiers: ["fan@v1.0"], slots: 1 });
    const small = runner({ runnerId: "r-ping", identifiers: ["ping@v1.0"], slots: 1 }, OTHER_TEAM_KEY);
    await Promise.all([big.take("welcome"), small.take("welcome")]);

    await srv.dispatch.enqueue({ tasks: [ledger.add({ taskId: "fan-out", clusterId: TEAM_1, name: "fan", version: "v1.0", jobId: "job-fan" })] });
    const root = await big.take("assign");
    const subtasks = Array.from({ length: FAN_OUT }, (_, i) => ({ identifier: { name: "child", version: "v1.0" }, display: `child ${i}` }));
    big.send({ case: "completed", value: { lease: { taskId: "fan-out", attempt: 1, token: root.lease!.token }, subtasks } });
    await eventually(() => fanOutArrived);

    // Another team's one-task job, enqueued after the fan-out was reported.
    await srv.dispatch.enqueue({
      tasks: [ledger.add({ taskId: "ping", clusterId: TEAM_2, name: "ping", version: "v1.0", jobId: "job-ping", teamId: "team-2" })],
    });
    const ping = await small.take("assign");
    small.send({ case: "completed", value: { lease: { taskId: "ping", attempt: 1, token: ping.lease!.token } } });
    expect((await small.take("ack")).accepted).toBe(true);

    // The ping is done while the fan-out's result is still on its way: nothing of it applied yet.
    expect(ledger.task("ping")?.state).toBe("computed");
    expect(ledger.task("fan-out")?.state).toBe("running");
    expect(big.all("ack")).toHaveLength(0);
    expect(ledger.task("child-0")).toBeUndefined();

    releaseFanOut();
    const ack = await big.take("ack");
    expect(ack.accepted).toBe(true);
    expect(ledger.task("fan-out")?.state).toBe("computed");
    // Acknowledged only once its subtasks are in the streams.
    const stats = await srv.dispatch.getQueueStats({ clusterId: TEAM_1 });
    const child = stats.queues.find((q) => q.identifier?.name === "child");
    expect(Number(child?.lag ?? 0)).toBe(FAN_OUT);
    expect(ledger.results.find((r) => r.result.taskId === "ping" && r.result.outcome.case === "completed")?.status).toBe(ResultStatus.APPLIED);
  });
});
