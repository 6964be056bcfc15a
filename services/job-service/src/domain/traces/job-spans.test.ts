// A job's spans as job-service keeps them: one trace per job, each attempt a span under its parent
// task's attempt, superseded attempts kept, a caller's traceparent continued, other teams refused.
import { SpanOutcome, type TaskEnvelope } from "@corral/proto";
import { NotFoundError } from "@corral/server-kit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobLedger, type JobLedger } from "../../job-ledger.js";
import {
  completed,
  createJobsTestDb,
  createRecordingDispatcher,
  createTestClusters,
  failed,
  started,
  task,
  type JobsTestDb,
  type RecordingDispatcher,
} from "../../testing/job-test-kit.js";
import { attemptSpanId } from "./attempt-spans.js";

let t: JobsTestDb;
let dispatcher: RecordingDispatcher;
let ledger: JobLedger;
const team = "team-a";

beforeAll(async () => {
  t = await createJobsTestDb("jobs_spans");
  dispatcher = createRecordingDispatcher();
  ledger = createJobLedger({ db: t.db, clusters: createTestClusters(), dispatcher });
});
afterAll(async () => {
  await t?.close();
});

function take(display: string): TaskEnvelope {
  const i = dispatcher.enqueued.findIndex((r) => r.display === display);
  if (i < 0) throw new Error(`${display} was not enqueued`);
  return dispatcher.enqueued.splice(i, 1)[0]!;
}

/** Reports results as the broker does, keeping the tasks they made ready. */
async function report(...results: Parameters<JobLedger["reportResults"]>[0]["results"]) {
  const out = await ledger.reportResults({ results });
  dispatcher.enqueued.push(...out.ready);
}

async function allSpans(jobId: string, pageSize = 0) {
  const spans = [];
  let token = "";
  do {
    const page = await ledger.getJobSpans(team, jobId, pageSize, token);
    spans.push(...page.spans);
    token = page.nextPageToken;
  } while (token !== "");
  return spans;
}

describe("job spans", () => {
  it("makes a three-level job one trace with each attempt under its parent's attempt", async () => {
    const { job } = await ledger.submitJob({ teamId: team, name: "tree", clusterSlug: "", tasks: [task("root")] });
    const root = take("root");
    await report(started(root, "runner-a"), completed(root, { subtasks: [task("child", { maxRetries: 1 })] }));
    const child1 = take("child");
    await report(started(child1, "runner-a"), failed(child1, { error: "flaky" }));
    const child2 = take("child");
    expect(child2.attempt).toBe(2);
    await report(started(child2, "runner-b"), completed(child2, { subtasks: [task("leaf", { clusterSlug: "gpu" })] }));
    const leaf = take("leaf");

    const trace = job.trace_id!;
    expect(trace).toMatch(/^[0-9a-f]{32}$/);
    // The runner gets the attempt's span to continue.
    expect(leaf.traceparent).toBe(`00-${trace}-${attemptSpanId(leaf.taskId, 1)}-01`);
    await report(started(leaf, "runner-c"), failed(leaf, { error: "leaf broke", unrecoverable: true }));

    const spans = await allSpans(job.id);
    expect(spans.map((s) => [s.identifier.name, s.attempt, SpanOutcome[s.outcome]])).toEqual([
      ["root", 1, "COMPUTED"],
      ["child", 1, "RETRIED"],
      ["child", 2, "COMPUTED"],
      ["leaf", 1, "FAILED"],
    ]);
    const [r, c1, c2, l] = spans;
    expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set([trace]));
    expect(r!.parentSpanId).toBe("");
    expect(c1!.parentSpanId).toBe(r!.spanId);
    expect(c2!.parentSpanId).toBe(r!.spanId);
    expect(l!.parentSpanId).toBe(c2!.spanId);
    expect(c1!.spanId).not.toBe(c2!.spanId);
    expect(c1).toMatchObject({ runnerId: "runner-a", error: "flaky" });
    expect(c2).toMatchObject({ runnerId: "runner-b", error: "" });
    expect(l).toMatchObject({ runnerId: "runner-c", clusterSlug: "gpu", error: "leaf broke", parentTaskId: c2!.taskId });
    for (const s of spans) {
      expect(s.startTime!.getTime()).toBeGreaterThanOrEqual(s.queueTime.getTime());
      expect(s.endTime!.getTime()).toBeGreaterThanOrEqual(s.startTime!.getTime());
    }
    // The retry was queued when the first attempt failed.
    expect(c2!.queueTime.getTime()).toBeGreaterThanOrEqual(c1!.endTime!.getTime());

    // Pages of one task each give the same spans.
    expect(await allSpans(job.id, 1)).toEqual(spans);
  });

  it("continues the caller's trace: the root tasks are children of the caller's span", async () => {
    const caller = { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", flags: 1 };
    const { job } = await ledger.submitJob({ teamId: team, name: "continued", clusterSlug: "", tasks: [task("a"), task("b")], trace: caller });
    const page = await ledger.getJobSpans(team, job.id, 0, "");
    expect(page.traceId).toBe(caller.traceId);
    expect(page.spans.map((s) => [s.identifier.name, s.traceId, s.parentSpanId, SpanOutcome[s.outcome]])).toEqual([
      ["a", caller.traceId, caller.spanId, "QUEUED"],
      ["b", caller.traceId, caller.spanId, "QUEUED"],
    ]);
    expect(take("a").traceparent).toBe(`00-${caller.traceId}-${page.spans[0]!.spanId}-01`);
    take("b");
  });

  it("keeps a failed attempt's span when RetryJob queues the task again", async () => {
    const { job } = await ledger.submitJob({ teamId: team, name: "retried", clusterSlug: "", tasks: [task("once")] });
    const first = take("once");
    await report(started(first), failed(first, { error: "first try", unrecoverable: true }));
    await ledger.retryJob(team, job.id);
    const second = take("once");
    await report(started(second), completed(second));
    const spans = await allSpans(job.id);
    expect(spans.map((s) => [s.attempt, SpanOutcome[s.outcome], s.error])).toEqual([
      [1, "FAILED", "first try"],
      [2, "COMPUTED", ""],
    ]);
  });

  it("ends the span of a task canceled while queued at the cancel time, kept when RetryJob queues it again", async () => {
    const { job } = await ledger.submitJob({ teamId: team, name: "canceled", clusterSlug: "", tasks: [task("waits")] });
    take("waits");
    const before = new Date();
    await ledger.cancelJob(team, job.id);
    const after = new Date();
    const [span] = await allSpans(job.id);
    expect(SpanOutcome[span!.outcome]).toBe("CANCELED");
    expect(span!.startTime).toBeNull();
    expect(span!.endTime).not.toBeNull();
    expect(span!.endTime!.getTime()).toBeGreaterThanOrEqual(before.getTime());
    expect(span!.endTime!.getTime()).toBeLessThanOrEqual(after.getTime());
    await ledger.retryJob(team, job.id);
    const spans = await allSpans(job.id);
    expect(spans.map((s) => [s.attempt, SpanOutcome[s.outcome], s.endTime?.getTime() ?? null])).toEqual([
      [1, "CANCELED", span!.endTime!.getTime()],
      [2, "QUEUED", null],
    ]);
  });

  it("answers NOT_FOUND for another team's job", async () => {
    const { job } = await ledger.submitJob({ teamId: team, name: "mine", clusterSlug: "", tasks: [task("x")] });
    take("x");
    await expect(ledger.getJobSpans("team-b", job.id, 0, "")).rejects.toBeInstanceOf(NotFoundError);
  });
});
