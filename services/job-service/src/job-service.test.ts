// The RPC surface over real HTTP/2: validation, auth and error codes, and a streaming call.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  GetJobRequestSchema,
  JobService,
  JobState,
  ReportResultsRequestSchema,
  ResultStatus,
  SubmitJobRequestSchema,
  TaskLedgerService,
} from "@corral/proto";
import { createServiceClient } from "@corral/server-kit";
import { startTestServer, type TestServer } from "@corral/server-kit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobService, type JobServiceHandle } from "./component.js";
import {
  completed,
  createJobsTestDb,
  createRecordingDispatcher,
  createTestClusters,
  started,
  task,
  type JobsTestDb,
  type RecordingDispatcher,
} from "./testing/job-test-kit.js";

const userKey = "corral_teamakey_0123456789abcdefXYZ";
const otherKey = "corral_teambkey_0123456789abcdefXYZ";
let t: JobsTestDb;
let service: JobServiceHandle;
let server: TestServer;
let dispatcher: RecordingDispatcher;

beforeAll(async () => {
  t = await createJobsTestDb("jobs_rpc");
  dispatcher = createRecordingDispatcher();
  service = createJobService({
    db: t.db,
    clusters: createTestClusters(),
    dispatcher,
    maxInputBytes: 100,
    databaseUrl: t.url,
  });
  server = await startTestServer({
    mounts: service.mounts,
    keys: {
      [userKey]: { kind: "user", teamId: "team-a", keyId: "teamakey" },
      [otherKey]: { kind: "user", teamId: "team-b", keyId: "teambkey" },
    },
  });
});
afterAll(async () => {
  await server?.close();
  await service?.close();
  await t?.close();
});

const jobs = (apiKey = userKey) => createServiceClient(JobService, { baseUrl: server.url, apiKey });
const ledgerClient = (apiKey: string) => createServiceClient(TaskLedgerService, { baseUrl: server.url, apiKey });

async function codeOf(p: Promise<unknown>): Promise<Code | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

describe("JobService over HTTP/2", () => {
  it("submits, reads, and runs a job through the ledger", async () => {
    const res = await jobs().submitJob(create(SubmitJobRequestSchema, { name: "rpc", tasks: [task("a")] }));
    expect(res.created).toBe(true);
    expect(res.job!.state).toBe(JobState.SUBMITTED);
    const env = dispatcher.enqueued.find((e) => e.jobId === res.job!.id)!;
    const out = await ledgerClient(server.serviceKey).reportResults(
      create(ReportResultsRequestSchema, { results: [started(env), completed(env, { progress: [{ label: "x", total: 3, done: 3 }] })] }),
    );
    expect(out.outcomes.map((o) => o.status)).toEqual([ResultStatus.APPLIED, ResultStatus.APPLIED]);
    const got = await jobs().getJob(create(GetJobRequestSchema, { jobId: res.job!.id }));
    expect(got.job!.state).toBe(JobState.COMPLETED);
    expect(got.job!.stats!.tasksByState!.computed).toBe(1);
    expect(got.job!.progress.map((p) => [p.label, p.total, p.done])).toEqual([["x", 3n, 3n]]);
    const progress = await jobs().getJobProgress({ jobId: res.job!.id });
    expect(progress.state).toBe(JobState.COMPLETED);
    const page = await jobs().queryJobs({ pageSize: 10 });
    expect(page.jobs.map((j) => j.id)).toContain(res.job!.id);
    const level = await jobs().listTasks({ jobId: res.job!.id });
    expect(level.tasks.map((x) => x.display)).toEqual(["a"]);
    const drawn = await jobs().visualizeJob({ jobId: res.job!.id });
    expect(drawn.svg).toContain("<svg");
  });

  it("streams WatchJob until the job ends", async () => {
    const res = await jobs().submitJob(create(SubmitJobRequestSchema, { name: "watch", tasks: [task("a")] }));
    const jobId = res.job!.id;
    const states: JobState[] = [];
    const env = dispatcher.enqueued.find((e) => e.jobId === jobId)!;
    for await (const msg of jobs().watchJob({ jobId })) {
      states.push(msg.job!.state);
      if (states.length === 1) {
        await ledgerClient(server.serviceKey).reportResults(create(ReportResultsRequestSchema, { results: [started(env), completed(env)] }));
      }
    }
    expect(states[0]).toBe(JobState.SUBMITTED);
    expect(states[states.length - 1]).toBe(JobState.COMPLETED);
  });

  it("answers INVALID_ARGUMENT for bad submissions", async () => {
    expect(await codeOf(jobs().submitJob(create(SubmitJobRequestSchema, { name: "", tasks: [task("a")] })))).toBe(Code.InvalidArgument);
    expect(await codeOf(jobs().submitJob(create(SubmitJobRequestSchema, { name: "x", tasks: [] })))).toBe(Code.InvalidArgument);
    expect(
      await codeOf(jobs().submitJob(create(SubmitJobRequestSchema, { name: "x", tasks: [task("a", { dependsOn: [0] })] }))),
    ).toBe(Code.InvalidArgument);
    expect(
      await codeOf(jobs().submitJob(create(SubmitJobRequestSchema, { name: "x", tasks: [task("a", { input: new Uint8Array(101) })] }))),
    ).toBe(Code.InvalidArgument);
    expect(
      await codeOf(jobs().submitJob(create(SubmitJobRequestSchema, { name: "x", tasks: [task("a", { version: "1" })] }))),
    ).toBe(Code.InvalidArgument);
  });

  it("answers INVALID_ARGUMENT naming the field for a malformed concurrency key or rate limit", async () => {
    const bad = [
      [{ concurrency: { key: "a\u0000b", limit: 1 } }, "tasks[0].concurrency.key"],
      [{ concurrency: { key: "acme", limit: 0 } }, "tasks[0].concurrency.limit"],
      [{ rateLimit: { name: "mail", limit: 5 } }, "tasks[0].rate_limit.period"],
    ] as const;
    for (const [options, field] of bad) {
      const err = await jobs()
        .submitJob(create(SubmitJobRequestSchema, { name: "x", tasks: [task("a", options as never)] }))
        .then(() => undefined, (e: unknown) => ConnectError.from(e));
      expect(err?.code, field).toBe(Code.InvalidArgument);
      expect(err?.rawMessage, field).toContain(field);
    }
  });

  it("answers NOT_FOUND for unknown clusters and other teams' jobs", async () => {
    expect(
      await codeOf(jobs().submitJob(create(SubmitJobRequestSchema, { name: "x", clusterSlug: "nope", tasks: [task("a")] }))),
    ).toBe(Code.NotFound);
    const res = await jobs().submitJob(create(SubmitJobRequestSchema, { name: "mine", tasks: [task("a")] }));
    expect(await codeOf(jobs(otherKey).getJob({ jobId: res.job!.id }))).toBe(Code.NotFound);
    expect(await codeOf(jobs(otherKey).cancelJob({ jobId: res.job!.id }))).toBe(Code.NotFound);
    expect(await codeOf(jobs().getJob({ jobId: "missing" }))).toBe(Code.NotFound);
  });

  it("checks who calls", async () => {
    expect(await codeOf(jobs("corral_nobody_0123456789abcdefXYZ").queryJobs({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(ledgerClient(userKey).reportResults({ results: [] }))).toBe(Code.PermissionDenied);
    expect(await codeOf(ledgerClient(userKey).acknowledgeDispatch({ tasks: [] }))).toBe(Code.PermissionDenied);
    expect(await codeOf(jobs(server.serviceKey).queryJobs({}))).toBe(Code.PermissionDenied);
  });

  it("cancels and retries over RPC", async () => {
    const res = await jobs().submitJob(create(SubmitJobRequestSchema, { name: "cancel", tasks: [task("a"), task("b")] }));
    const canceled = await jobs().cancelJob({ jobId: res.job!.id });
    expect(canceled.job!.state).toBe(JobState.CANCELED);
    const retried = await jobs().retryJob({ jobId: res.job!.id });
    expect(retried.rescheduledCount).toBe(2);
    expect(retried.job!.state).toBe(JobState.SUBMITTED);
  });
});
