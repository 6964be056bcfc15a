// Text Postgres cannot store (a NUL character) answers INVALID_ARGUMENT naming the field at the
// edge, on public and internal RPCs, over Connect JSON and gRPC binary, and on the runner stream;
// nothing reaches Postgres and nothing stalls. Unknown JSON enum names and fields are refused
// rather than dropped (a dropped filter value widened a query to every job); x-request-id is capped.
import { create, type DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { JobService, JobState, LocationService, TaskBrokerService, TaskLedgerService, WorkRequestSchema, type WorkRequest } from "@corral/proto";
import { Runner, Task, createSdkLogger, rawTask } from "@corral/sdk";
import { bearer, createServiceClient } from "@corral/server-kit";
import { v7 as uuidv7 } from "uuid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { untilTrue } from "../faults/support/wait.js";
import { startSuite, type Suite } from "../support/suite.js";

const identifier = { name: "edge/Text", version: "v1.0" };

class Echo extends Task<unknown> {
  static override identifier = { name: "edge/Echo", version: "v1.0" };
  override execute() {}
}

async function errorOf(run: () => Promise<unknown>): Promise<ConnectError | "ok"> {
  try {
    await run();
    return "ok";
  } catch (err) {
    return ConnectError.from(err);
  }
}

/** Expects INVALID_ARGUMENT whose message starts with `field: `. */
async function expectNamed(what: string, field: string, run: () => Promise<unknown>) {
  const err = await errorOf(run);
  expect(err === "ok" ? "ok" : Code[err.code], what).toBe(Code[Code.InvalidArgument]);
  expect((err as ConnectError).rawMessage.startsWith(`${field}: `), `${what}: ${(err as ConnectError).rawMessage}`).toBe(true);
}

describe("text at the edge", () => {
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite({ label: "edge_text" });
  });
  afterAll(async () => {
    await suite?.stop();
  });

  const encodings = (): Array<[string, (baseUrl: string, key: string) => Transport]> => [
    ["gRPC binary", (baseUrl, key) => createGrpcTransport({ baseUrl, interceptors: [bearer(key)] })],
    ["Connect JSON", (baseUrl, key) => createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: false, interceptors: [bearer(key)] })],
  ];
  const client = <S extends DescService>(s: S, t: (u: string, k: string) => Transport, where: "registry" | "jobs", key = suite.apiKey) =>
    createClient(s, t(suite[where].url, key));

  it("answers INVALID_ARGUMENT naming the field to a NUL in SubmitJob, CreateLocation and QueryJobs, and stores nothing", async () => {
    for (const [encoding, transport] of encodings()) {
      const jobs = client(JobService, transport, "jobs");
      const locations = client(LocationService, transport, "registry");
      const task = (extra: Record<string, unknown> = {}) => ({ identifier, ...extra });
      const cases: Array<[string, () => Promise<unknown>]> = [
        ["name", () => jobs.submitJob({ name: "job\u0000", tasks: [task()] })],
        ["idempotency_key", () => jobs.submitJob({ name: "job", idempotencyKey: "\u0000", tasks: [task()] })],
        ["tasks[3].display", () => jobs.submitJob({ name: "job", tasks: [task(), task(), task(), task({ display: "a\u0000b" })] })],
        ["tasks[1].identifier.name", () => jobs.submitJob({ name: "job", tasks: [task(), task({ identifier: { name: "x\u0000", version: "v1.0" } })] })],
        ["name", () => locations.createLocation({ name: "\u0000", provider: "aws", region: "eu" })],
        ["region", () => locations.createLocation({ name: "ok", provider: "aws", region: "eu\u0000" })],
        ["name", () => jobs.queryJobs({ name: "\u0000" })],
      ];
      for (const [field, run] of cases) await expectNamed(`${encoding} ${field}`, field, run);
    }
    const jobs = createServiceClient(JobService, { baseUrl: suite.jobs.url, apiKey: suite.apiKey });
    expect((await jobs.queryJobs({})).jobs).toEqual([]);
    expect((await createServiceClient(LocationService, { baseUrl: suite.registry.url, apiKey: suite.apiKey }).listLocations({})).locations).toEqual([]);
  });

  it("answers INVALID_ARGUMENT naming the field to a NUL in a result on the internal ReportResults", async () => {
    const [, grpc] = encodings()[0]!;
    const ledger = client(TaskLedgerService, grpc, "jobs", suite.serviceKey);
    const completed = { case: "completed", value: { display: "done\u0000" } };
    await expectNamed("ReportResults", "results[0].completed.display", () =>
      ledger.reportResults({ results: [{ taskId: uuidv7(), attempt: 1, outcome: completed }] } as never),
    );
  });

  it("ends the Work stream that sends a NUL in a Completed result with INVALID_ARGUMENT naming the field; other runners go on", async () => {
    const runner = new Runner({ url: suite.broker.url, apiKey: suite.apiKey, tasks: [Echo], logger: createSdkLogger("edge-text", "error") });
    const running = runner.runForever({ handleSignals: false });
    const broker = createServiceClient(TaskBrokerService, { baseUrl: suite.broker.url, apiKey: suite.apiKey, timeoutMs: 30_000 });
    const m = (message: unknown) => create(WorkRequestSchema, { message } as never);
    const abort = new AbortController();
    let welcomed: () => void = () => {};
    const welcome = new Promise<void>((r) => (welcomed = r));
    async function* input(): AsyncIterable<WorkRequest> {
      yield m({ case: "hello", value: { runnerId: "nul", identifiers: [identifier], slots: 1 } });
      await welcome;
      yield m({ case: "completed", value: { lease: { taskId: uuidv7(), attempt: 1, token: "t" }, display: "bad\u0000display" } });
      await new Promise((r) => abort.signal.addEventListener("abort", r));
    }
    const workErrors: string[] = [];
    const ended = await errorOf(async () => {
      for await (const res of broker.work(input(), { signal: abort.signal })) {
        if (res.message.case === "welcome") welcomed();
        if (res.message.case === "error") workErrors.push(res.message.value.message);
      }
    });
    abort.abort();
    expect(ended === "ok" ? "ok" : Code[ended.code]).toBe(Code[Code.InvalidArgument]);
    expect((ended as ConnectError).rawMessage).toMatch(/^completed\.display: .*NUL/);
    expect(workErrors.length, "a WorkError precedes the end").toBeGreaterThan(0);
    // The broker goes on: a well-behaved runner still runs a job.
    const jobs = createServiceClient(JobService, { baseUrl: suite.jobs.url, apiKey: suite.apiKey });
    const job = (await jobs.submitJob({ name: "after-nul", tasks: [rawTask(Echo.identifier)] })).job!;
    await untilTrue("the good runner runs a job", async () => (await jobs.getJob({ jobId: job.id })).job?.state === JobState.COMPLETED, 30_000);
    await runner.stop();
    await running;
  }, 60_000);

  it("refuses an unknown enum name or an unknown field in JSON instead of dropping it (QueryJobs would return every job)", async () => {
    const jobs = createServiceClient(JobService, { baseUrl: suite.jobs.url, apiKey: suite.apiKey });
    await jobs.submitJob({ name: "a-job", tasks: [rawTask(identifier)] });
    const post = async (body: unknown) => {
      const res = await fetch(`${suite.jobs.url}/corral.jobs.v1.JobService/QueryJobs`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${suite.apiKey}` },
        body: JSON.stringify(body),
      });
      return (await res.json()) as { code?: string; message?: string; jobs?: unknown[] };
    };
    const bogusState = await post({ states: ["JOB_STATE_BOGUS"] });
    expect(bogusState.code, JSON.stringify(bogusState)).toBe("invalid_argument");
    expect(bogusState.message).toMatch(/^states\[0\]: /);
    const unknownField = await post({ stats: ["JOB_STATE_SUBMITTED"] });
    expect(unknownField.code, JSON.stringify(unknownField)).toBe("invalid_argument");
    expect(unknownField.message).toMatch(/^stats: /);
    // A known name still filters.
    expect((await post({ states: ["JOB_STATE_CANCELED"] })).jobs ?? []).toEqual([]);
  });

  it("echoes x-request-id only when short and plain; a longer one is replaced by a fresh id", async () => {
    const call = async (id: string) => {
      const res = await fetch(`${suite.jobs.url}/corral.jobs.v1.JobService/QueryJobs`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${suite.apiKey}`, "x-request-id": id },
        body: "{}",
      });
      expect(res.status).toBe(200);
      return res.headers.get("x-request-id");
    };
    expect(await call("trace-0123456789")).toBe("trace-0123456789");
    const long = "r".repeat(4096);
    const echoed = await call(long);
    expect(echoed).not.toBe(long);
    expect(echoed!.length).toBeLessThanOrEqual(128);
  });
});
