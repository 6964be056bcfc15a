// Traces over the three services as separate processes exporting to a real OTLP/HTTP receiver:
// a three-level job is one trace (the job's) with each task attempt a span under its parent's, a
// retried attempt and a failed one with status ERROR, the RPCs that submitted and reported it in
// the same trace; a submission with a traceparent continues the caller's trace; task code's own
// spans nest under their attempt; `corral job spans` and jobs().spans() show the same tree.
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { context, trace } from "@opentelemetry/api";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { GetJobSpansRequestSchema, GetJobSpansResponseSchema, SpanOutcome, SubmitJobRequestSchema, SubmitJobResponseSchema, type GetJobSpansResponse, type SubmitJobResponse } from "@corral/proto";
import { rawTask, Task, type Client, type ExecutionContext, type Runner } from "@corral/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { startRunner, suiteClient, suiteRunner, waitUntil } from "../support/clients.js";
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from "../support/otlp-receiver.js";
import { grpcMethod } from "../support/grpc-js.js";
import { startSuite, type Suite } from "../support/suite.js";

const GrpcJobs = grpc.makeGenericClientConstructor(
  {
    submitJob: grpcMethod("/corral.jobs.v1.JobService/SubmitJob", SubmitJobRequestSchema, SubmitJobResponseSchema),
    getJobSpans: grpcMethod("/corral.jobs.v1.JobService/GetJobSpans", GetJobSpansRequestSchema, GetJobSpansResponseSchema),
  },
  "Jobs",
);

function unary<T>(client: grpc.Client, name: string, req: unknown, metadata: grpc.Metadata): Promise<T> {
  return new Promise((resolve, reject) =>
    (client as any)[name](req, metadata, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res))),
  );
}

/** Level 3: does its work in a span of its own; `ok: false` throws. */
class Leaf extends Task<{ ok: boolean }, string> {
  static override identifier = { name: "traces/Leaf", version: "v1.0" };
  override execute(): string {
    return trace.getTracer("e2e-task-code").startActiveSpan("leaf-work", (span) => {
      span.end();
      if (!this.input.ok) throw new Error("leaf broke");
      return "done";
    });
  }
}

/** Level 2: its first attempt fails; the retry submits a leaf that works and an optional one that fails. */
class Mid extends Task<void> {
  static override identifier = { name: "traces/Mid", version: "v1.0" };
  override execute(ctx: ExecutionContext): void {
    if (ctx.task.attempt === 1) throw new Error("first attempt fails");
    ctx.submitSubtask(new Leaf({ ok: true }));
    ctx.submitSubtask(new Leaf({ ok: false }), { optional: true });
  }
}

/** Level 1. */
class Root extends Task<void> {
  static override identifier = { name: "traces/Root", version: "v1.0" };
  override execute(ctx: ExecutionContext): void {
    ctx.submitSubtask(new Mid(), { maxRetries: 1 });
  }
}

const SERVER = 2;
const STATUS_OK = 1;
const STATUS_ERROR = 2;

describe("traces exported over OTLP/HTTP", { timeout: 120_000 }, () => {
  let receiver: OtlpReceiver;
  let suite: Suite;
  let client: Client;
  let runner: Runner;
  let cluster: string;
  /** What task code in this process recorded with its own tracer provider. */
  const taskCodeSpans = new InMemorySpanExporter();

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    suite = await startSuite({
      label: "e2e-traces",
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY: "50" },
    });
    // The user's own OpenTelemetry setup in the runner's process.
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(taskCodeSpans)] }));
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    client = suiteClient(suite);
    cluster = (await client.clusters().create("traces")).slug;
    runner = suiteRunner(suite, { cluster, tasks: [Root, Mid, Leaf], concurrency: 4 });
    await startRunner(runner);
  });
  afterAll(async () => {
    await runner?.stop();
    await suite?.stop();
    await receiver?.close();
    trace.disable();
    context.disable();
  });

  const attemptsOf = (traceId: string) => receiver.spans.filter((s) => s.traceId === traceId && s.attributes["corral.task.id"] !== undefined && s.kind !== SERVER);
  const one = (spans: ReceivedSpan[], pick: (s: ReceivedSpan) => boolean, what: string) => {
    const found = spans.filter(pick);
    expect(found, what).toHaveLength(1);
    return found[0]!;
  };

  it("exports a three-level job as one trace: parents, attributes, status on failure, the RPCs in it", async () => {
    const job = await client.jobs().submit("three levels", new Root(), { cluster });
    await client.jobs().wait(job.id);
    expect(job.traceId).toMatch(/^[0-9a-f]{32}$/);
    const spans = await waitUntil("five attempt spans", async () => {
      const found = attemptsOf(job.traceId);
      return found.length >= 5 && found;
    });
    expect(spans).toHaveLength(5);
    expect(receiver.refused).toBe(0);

    const submit = one(receiver.spans, (s) => s.traceId === job.traceId && s.name === "corral.jobs.v1.JobService/SubmitJob", "SubmitJob span");
    expect(submit).toMatchObject({ kind: SERVER, service: "job-service", parentSpanId: "" });

    const root = one(spans, (s) => s.name === "traces/Root", "root");
    const mid1 = one(spans, (s) => s.name === "traces/Mid" && s.attributes["corral.task.attempt"] === 1, "mid attempt 1");
    const mid2 = one(spans, (s) => s.name === "traces/Mid" && s.attributes["corral.task.attempt"] === 2, "mid attempt 2");
    const good = one(spans, (s) => s.name === "traces/Leaf" && s.status.code === STATUS_OK, "good leaf");
    const bad = one(spans, (s) => s.name === "traces/Leaf" && s.status.code === STATUS_ERROR, "bad leaf");

    // Without a traceparent the job's trace is its SubmitJob call's: the root task is under it.
    expect(root.parentSpanId).toBe(submit.spanId);
    expect(mid1.parentSpanId).toBe(root.spanId);
    expect(mid2.parentSpanId).toBe(root.spanId);
    expect(good.parentSpanId).toBe(mid2.spanId);
    expect(bad.parentSpanId).toBe(mid2.spanId);

    expect(root.attributes).toMatchObject({
      "corral.job.id": job.id,
      "corral.task.identifier": "traces/Root@v1.0",
      "corral.cluster": cluster,
      "corral.node": runner.id,
      "corral.task.attempt": 1,
      "corral.task.outcome": "computed",
    });
    expect(root.status.code).toBe(STATUS_OK);
    expect(mid1.attributes["corral.task.outcome"]).toBe("retried");
    expect(mid1.status).toEqual({ code: STATUS_ERROR, message: expect.stringContaining("first attempt fails") });
    expect(bad.attributes["corral.task.outcome"]).toBe("failed");
    expect(bad.status).toEqual({ code: STATUS_ERROR, message: expect.stringContaining("leaf broke") });
    for (const s of spans) {
      expect(s.endNs).toBeGreaterThanOrEqual(s.startNs);
      expect(s.events.map((e) => e.name)).toEqual(["started"]);
      expect(s.events[0]!.timeNs).toBeGreaterThanOrEqual(s.startNs);
    }

    // The result reports that ended each attempt are in the trace, under the attempt.
    const reports = await waitUntil("a ReportResults span per attempt", async () => {
      const found = receiver.spans.filter((s) => s.traceId === job.traceId && s.name === "corral.jobs.v1.TaskLedgerService/ReportResults");
      return found.length >= 5 && found;
    });
    expect(new Set(reports.map((r) => r.parentSpanId))).toEqual(new Set(spans.map((s) => s.spanId)));

    // Task code's own span is a child of its attempt's span, in the job's trace.
    const leafWork = taskCodeSpans.getFinishedSpans().filter((s) => s.spanContext().traceId === job.traceId);
    expect(leafWork.map((s) => s.parentSpanContext?.spanId).sort()).toEqual([good.spanId, bad.spanId].sort());

    // The SDK reads the same spans back from job-service.
    const stored = await client.jobs().spans(job.id);
    expect(stored.traceId).toBe(job.traceId);
    expect(new Set(stored.spans.map((s) => `${s.spanId}<${s.parentSpanId}`))).toEqual(new Set(spans.map((s) => `${s.spanId}<${s.parentSpanId}`)));

    // And the CLI draws them as a tree.
    const env = { CORRAL_URL: suite.jobs.url, CORRAL_API_KEY: suite.apiKey };
    const printed = await runCli(["job", "spans", job.id, "--width", "20"], { env });
    expect(printed.stderr).toBe("");
    const lines = printed.stdout.trimEnd().split("\n");
    expect(lines[0]).toContain(`trace ${job.traceId}`);
    const labels = lines.slice(2).flatMap((l) => /^([│ ]*(?:[├└]─ )?traces\/\S+(?: #\d+)?)/.exec(l)?.[1] ?? []);
    expect(labels).toEqual(["traces/Root", "├─ traces/Mid", "└─ traces/Mid #2", "   ├─ traces/Leaf", "   └─ traces/Leaf"]);
    expect(printed.stdout).toContain("leaf broke");
    const json = await runCli(["job", "spans", job.id, "--json"], { env });
    expect(JSON.parse(json.stdout)).toEqual(JSON.parse(JSON.stringify(stored)));
  });

  it("exports the span of a task canceled before it started, ended at the cancel", async () => {
    const idle = (await client.clusters().create("traces without runners")).slug;
    const job = await client.jobs().submit("canceled", new Leaf({ ok: true }), { cluster: idle });
    const before = Date.now();
    await client.jobs().cancel(job.id);
    const after = Date.now();
    const [span] = await waitUntil("the canceled task's span", async () => {
      const found = attemptsOf(job.traceId);
      return found.length >= 1 && found;
    });
    expect(span).toMatchObject({ name: "traces/Leaf", events: [], status: { code: STATUS_OK } });
    expect(span!.attributes).toMatchObject({ "corral.task.outcome": "canceled", "corral.node": "", "corral.cluster": idle });
    const [stored] = (await client.jobs().spans(job.id)).spans;
    expect(stored!.outcome).toBe("canceled");
    // The cancel time is stored: GetJobSpans shows the same end as the exported span.
    const ended = stored!.ended!.getTime();
    expect(ended).toBeGreaterThanOrEqual(before);
    expect(ended).toBeLessThanOrEqual(after);
    expect(span!.endNs / 1_000_000n).toBe(BigInt(ended));
  });

  it("serves task run times by identifier and per-cluster queue depth on /metrics", async () => {
    const job = await client.jobs().submit("metrics", new Leaf({ ok: true }), { cluster });
    await client.jobs().wait(job.id);
    const jobsMetrics = await (await fetch(`${suite.jobs.url}/metrics`)).text();
    expect(jobsMetrics).toMatch(/corral_task_duration_seconds_count\{identifier="traces\/Leaf@v1.0",outcome="computed"\} [1-9]/);
    expect(jobsMetrics).toMatch(/corral_task_duration_seconds_count\{identifier="traces\/Mid@v1.0",outcome="retried"\} 1/);
    const brokerMetrics = await (await fetch(`${suite.broker.url}/metrics`)).text();
    expect(brokerMetrics).toMatch(/corral_queue_depth\{cluster_id="[^"]+"\} 0/);
  });

  it("continues the trace of a submission that carries a traceparent", async () => {
    const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
    const callerSpan = "00f067aa0ba902b7";
    const job = await client.jobs().submit("continued", new Leaf({ ok: true }), { cluster, traceparent: `00-${callerTrace}-${callerSpan}-01` });
    expect(job.traceId).toBe(callerTrace);
    await client.jobs().wait(job.id);
    const [leaf] = await waitUntil("the leaf's span", async () => {
      const found = attemptsOf(callerTrace);
      return found.length >= 1 && found;
    });
    expect(leaf).toMatchObject({ name: "traces/Leaf", parentSpanId: callerSpan, status: { code: STATUS_OK, message: "" } });
    const submit = one(receiver.spans, (s) => s.traceId === callerTrace && s.name === "corral.jobs.v1.JobService/SubmitJob", "SubmitJob span");
    expect(submit.parentSpanId).toBe(callerSpan);
    const stored = await client.jobs().spans(job.id);
    expect(stored).toMatchObject({ traceId: callerTrace, parentSpanId: callerSpan });
    expect(stored.spans.map((s) => s.parentSpanId)).toEqual([callerSpan]);

    // The CLI continues $TRACEPARENT (as a traced CI step sets it).
    const env = { CORRAL_URL: suite.jobs.url, CORRAL_API_KEY: suite.apiKey, TRACEPARENT: `00-${callerTrace}-${"1".repeat(16)}-01` };
    const submitted = await runCli(["job", "submit", "--task", "traces/Leaf@v1.0", "--input", '{"ok":true}', "--cluster", cluster, "--json"], { env });
    expect(submitted.stderr).toBe("");
    expect(JSON.parse(submitted.stdout)).toMatchObject({ traceId: callerTrace });
  });

  it("continues a traceparent sent as gRPC metadata by a plain @grpc/grpc-js client", async () => {
    const jobs = new GrpcJobs(`127.0.0.1:${suite.jobs.port}`, grpc.credentials.createInsecure());
    try {
      const md = new grpc.Metadata();
      md.set("authorization", `Bearer ${suite.apiKey}`);
      md.set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
      const submitted = await unary<SubmitJobResponse>(
        jobs,
        "submitJob",
        create(SubmitJobRequestSchema, { name: "grpc", clusterSlug: cluster, tasks: [rawTask(Leaf.identifier, { ok: true })] }),
        md,
      );
      expect(submitted.job!.traceId).toBe("0af7651916cd43dd8448eb211c80319c");
      const auth = new grpc.Metadata();
      auth.set("authorization", `Bearer ${suite.apiKey}`);
      const spans = await unary<GetJobSpansResponse>(jobs, "getJobSpans", create(GetJobSpansRequestSchema, { jobId: submitted.job!.id }), auth);
      expect(spans).toMatchObject({ traceId: "0af7651916cd43dd8448eb211c80319c", parentSpanId: "b7ad6b7169203331" });
      expect(spans.spans.map((s) => [s.parentSpanId, s.attempt])).toEqual([["b7ad6b7169203331", 1]]);
      expect([SpanOutcome.QUEUED, SpanOutcome.RUNNING, SpanOutcome.COMPUTED]).toContain(spans.spans[0]!.outcome);
    } finally {
      jobs.close();
    }
  });
});
