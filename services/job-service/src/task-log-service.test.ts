// TaskLogService and TaskLogIngestService over real HTTP/2 and Postgres: lines stored per attempt
// in order, the bound with its marker, refused attempts, team isolation, validation naming
// fields, and FollowJobLogs ending with the job.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  AttemptLogLinesSchema,
  JobService,
  LogEntrySchema,
  LogLevel,
  ReportResultsRequestSchema,
  SubmitJobRequestSchema,
  TaskLedgerService,
  TaskLogIngestService,
  TaskLogService,
  type TaskEnvelope,
} from "@corral/proto";
import { createServiceClient } from "@corral/server-kit";
import { startTestServer, type TestServer } from "@corral/server-kit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobService, type JobServiceHandle } from "./component.js";
import { createLogRetention } from "./domain/task-logs/log-retention.js";
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
  t = await createJobsTestDb("jobs_task_logs");
  dispatcher = createRecordingDispatcher();
  service = createJobService({
    db: t.db,
    clusters: createTestClusters(),
    dispatcher,
    databaseUrl: t.url,
    taskLogs: { maxLines: 100, maxBytes: 64 * 1024 },
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
const logs = (apiKey = userKey) => createServiceClient(TaskLogService, { baseUrl: server.url, apiKey });
const ingest = (apiKey = server.serviceKey) => createServiceClient(TaskLogIngestService, { baseUrl: server.url, apiKey });
const ledger = () => createServiceClient(TaskLedgerService, { baseUrl: server.url, apiKey: server.serviceKey });

async function errorOf(p: Promise<unknown>): Promise<ConnectError | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return ConnectError.from(err);
  }
}

async function submit(name: string, tasks = [task("a")]): Promise<TaskEnvelope[]> {
  const res = await jobs().submitJob(create(SubmitJobRequestSchema, { name, tasks }));
  return dispatcher.enqueued.filter((e) => e.jobId === res.job!.id);
}

function lines(env: Pick<TaskEnvelope, "taskId">, attempt: number, messages: string[], clusterId = "team-a-default-id", dropped = 0) {
  return create(AttemptLogLinesSchema, {
    taskId: env.taskId,
    attempt,
    clusterId,
    droppedCount: dropped,
    lines: messages.map((m, i) =>
      create(LogEntrySchema, { time: timestampFromMs(1_700_000_000_000 + i), level: LogLevel.INFO, message: m, fieldsJson: JSON.stringify({ i }) }),
    ),
  });
}

/** The task log line counters as /metrics shows them: stored, and dropped by reason. */
async function lineCounts(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const m of await service.metrics.getMetricsAsJSON()) {
    if (m.name === "corral_task_log_lines_stored_total") out.stored = m.values[0]?.value ?? 0;
    if (m.name === "corral_task_log_lines_dropped_total") for (const v of m.values) out[String(v.labels.reason)] = v.value;
  }
  return out;
}

/** How much each counter grew while `work` ran. */
async function countsDuring(work: () => Promise<void>): Promise<Record<string, number>> {
  const before = await lineCounts();
  await work();
  const after = await lineCounts();
  return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]));
}

describe("task logs over HTTP/2", () => {
  it("stores lines per attempt in order and reads them by task, attempt and cursor", async () => {
    const [env] = await submit("logs order");
    await ledger().reportResults(create(ReportResultsRequestSchema, { results: [started(env!)] }));
    const out = await ingest().appendTaskLogs({ attempts: [lines(env!, 1, ["one", "two"]), lines(env!, 1, ["three"])] });
    expect(out.storedCount).toBe(3);
    expect(out.refused).toEqual([]);
    const all = await logs().listTaskLogs({ jobId: env!.jobId });
    expect(all.lines.map((l) => [l.taskId, l.attempt, l.line!.message, l.line!.fieldsJson, l.taskName])).toEqual([
      [env!.taskId, 1, "one", '{"i":0}', "a"],
      [env!.taskId, 1, "two", '{"i":1}', "a"],
      [env!.taskId, 1, "three", '{"i":0}', "a"],
    ]);
    const after = await logs().listTaskLogs({ jobId: env!.jobId, afterCursor: all.lines[0]!.cursor, limit: 1 });
    expect(after.lines.map((l) => l.line!.message)).toEqual(["two"]);
    expect(after.more).toBe(true);
    expect((await logs().listTaskLogs({ jobId: env!.jobId, taskId: env!.taskId, attempt: 2 })).lines).toEqual([]);
  });

  it("keeps the newest lines of an attempt over its bound, with a marker saying how many were dropped", async () => {
    const [env] = await submit("logs bound");
    await ledger().reportResults(create(ReportResultsRequestSchema, { results: [started(env!)] }));
    const counted = await countsDuring(async () => {
      for (let batch = 0; batch < 10; batch++) {
        await ingest().appendTaskLogs({ attempts: [lines(env!, 1, Array.from({ length: 30 }, (_, i) => `line ${batch * 30 + i}`))] });
      }
    });
    // Every line was taken; 201 of them went past the bound (what /metrics says of them).
    expect(counted).toEqual({ stored: 300, upstream: 0, bound: 201, refused: 0 });
    const page = await logs().listTaskLogs({ jobId: env!.jobId, limit: 1000 });
    expect(page.lines).toHaveLength(100);
    expect(page.lines[0]!.droppedCount).toBe(201);
    expect(page.lines[0]!.line!.level).toBe(LogLevel.WARN);
    expect(page.lines[0]!.line!.message).toMatch(/^201 earlier lines were dropped/);
    expect(page.lines.slice(1).map((l) => l.line!.message)).toEqual(Array.from({ length: 99 }, (_, i) => `line ${201 + i}`));
  });

  it("refuses lines of unknown tasks, other clusters' tasks and attempts that never started, and stores the rest", async () => {
    const [env] = await submit("logs refused");
    await ledger().reportResults(create(ReportResultsRequestSchema, { results: [started(env!)] }));
    let out!: Awaited<ReturnType<ReturnType<typeof ingest>["appendTaskLogs"]>>;
    const counted = await countsDuring(async () => {
      out = await ingest().appendTaskLogs({
        attempts: [
          lines({ taskId: "nope" }, 1, ["x"]),
          lines(env!, 1, ["y"], "team-b-default-id"),
          lines(env!, 2, ["z"]),
          lines(env!, 1, ["kept"], "team-a-default-id", 3),
        ],
      });
    });
    expect(counted).toEqual({ stored: 1, upstream: 3, bound: 0, refused: 3 });
    expect(out.refused.map((r) => [r.taskId, r.attempt, r.reason])).toEqual([
      ["nope", 1, "task not found"],
      [env!.taskId, 1, "task not found"],
      [env!.taskId, 2, "attempt never started"],
    ]);
    const page = await logs().listTaskLogs({ jobId: env!.jobId });
    expect(page.lines.map((l) => [l.line!.message, l.droppedCount])).toEqual([
      ["3 lines were dropped before they were stored (full buffers)", 3],
      ["kept", 0],
    ]);
  });

  it("isolates teams, checks callers and names the bad field", async () => {
    const [env] = await submit("logs isolation");
    expect((await errorOf(logs(otherKey).listTaskLogs({ jobId: env!.jobId })))?.code).toBe(Code.NotFound);
    expect((await errorOf(ingest(userKey).appendTaskLogs({ attempts: [] })))?.code).toBe(Code.PermissionDenied);
    const bad = await errorOf(logs().listTaskLogs({ jobId: env!.jobId, afterCursor: "x1" }));
    expect(bad?.code).toBe(Code.InvalidArgument);
    expect(bad?.rawMessage).toContain("after_cursor");
    const noTask = await errorOf(logs().listTaskLogs({ jobId: env!.jobId, attempt: 1 }));
    expect(noTask?.code).toBe(Code.InvalidArgument);
    expect(noTask?.rawMessage).toContain("attempt");
    const nul = await errorOf(ingest().appendTaskLogs({ attempts: [lines(env!, 1, ["a\u0000b"])] }));
    expect(nul?.code).toBe(Code.InvalidArgument);
    expect(nul?.rawMessage).toContain("attempts[0].lines[0].message");
  });

  it("FollowJobLogs sends stored lines, then new ones, and ends when the job ends", async () => {
    const [env] = await submit("logs follow");
    await ledger().reportResults(create(ReportResultsRequestSchema, { results: [started(env!)] }));
    await ingest().appendTaskLogs({ attempts: [lines(env!, 1, ["before"])] });
    const seen: string[] = [];
    for await (const msg of logs().followJobLogs({ jobId: env!.jobId })) {
      seen.push(...msg.lines.map((l) => l.line!.message));
      if (seen.length === 1) await ingest().appendTaskLogs({ attempts: [lines(env!, 1, ["while running"])] });
      if (seen.length === 2) {
        await ingest().appendTaskLogs({ attempts: [lines(env!, 1, ["last"])] });
        await ledger().reportResults(create(ReportResultsRequestSchema, { results: [completed(env!)] }));
      }
    }
    expect(seen).toEqual(["before", "while running", "last"]);
    expect((await errorOf(logs(otherKey).followJobLogs({ jobId: env!.jobId })[Symbol.asyncIterator]().next()))?.code).toBe(Code.NotFound);
  });

  it("retention deletes the logs of jobs that ended longer ago, and nothing of running jobs", async () => {
    const [ended] = await submit("logs retention ended");
    const [running] = await submit("logs retention running");
    await ledger().reportResults(create(ReportResultsRequestSchema, { results: [started(ended!), started(running!)] }));
    await ingest().appendTaskLogs({ attempts: [lines(ended!, 1, ["old"]), lines(running!, 1, ["still running"])] });
    await ledger().reportResults(create(ReportResultsRequestSchema, { results: [completed(ended!)] }));
    const inAnHour = () => new Date(Date.now() + 3_600_000);
    const retention = createLogRetention({ db: t.db }, { retentionMs: 60_000, now: inAnHour });
    expect(await retention.sweepOnce()).toBeGreaterThanOrEqual(1);
    await retention.close();
    expect((await logs().listTaskLogs({ jobId: ended!.jobId })).lines).toEqual([]);
    expect((await logs().listTaskLogs({ jobId: running!.jobId })).lines.map((l) => l.line!.message)).toEqual(["still running"]);
  });
});
