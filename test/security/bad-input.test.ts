// Bad input on every RPC of every service: a corpus generated from each request schema and its
// protovalidate rules answers INVALID_ARGUMENT; malformed protobuf bytes and invalid UTF-8 answer
// INVALID_ARGUMENT; oversized messages RESOURCE_EXHAUSTED; rules the schema cannot express (task
// versions, input size, dependency cycles) INVALID_ARGUMENT; unknown ids NOT_FOUND. Nothing crashes
// and nothing changes. On the runner stream, protocol violations end only the offending stream.
import { create, toBinary, type DescMessage, type DescMethod, type DescService, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  ApiKeyService,
  ClusterService,
  ConfigurationService,
  DispatchService,
  HardwareService,
  JobService,
  JobCacheService,
  JobState,
  LocationService,
  NodeService,
  ReleaseService,
  RouteService,
  RuntimeService,
  TaskBrokerService,
  TaskLedgerService,
  TaskLogIngestService,
  TaskLogService,
  WorkRequestSchema,
  type WorkRequest,
} from "@corral/proto";
import { fromBinary } from "@bufbuild/protobuf";
import { Runner, Task, createSdkLogger, rawTask } from "@corral/sdk";
import { createServiceClient } from "@corral/server-kit";
import { v7 as uuidv7 } from "uuid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSuite, type Suite } from "../support/suite.js";
import { untilTrue } from "../faults/support/wait.js";
import { invalidCorpus } from "./support/invalid-corpus.js";
import { connectUnaryRaw, grpcFrame, grpcStreamRaw } from "./support/raw-calls.js";

type Where = "registry" | "jobs" | "broker";
const services: Array<{ service: DescService; where: Where }> = [
  { service: ClusterService, where: "registry" },
  { service: LocationService, where: "registry" },
  { service: HardwareService, where: "registry" },
  { service: ConfigurationService, where: "registry" },
  { service: NodeService, where: "registry" },
  { service: RuntimeService, where: "registry" },
  { service: ReleaseService, where: "registry" },
  { service: RouteService, where: "registry" },
  { service: ApiKeyService, where: "registry" },
  { service: JobService, where: "jobs" },
  { service: TaskLedgerService, where: "jobs" },
  { service: TaskLogService, where: "jobs" },
  { service: TaskLogIngestService, where: "jobs" },
  { service: DispatchService, where: "broker" },
  { service: JobCacheService, where: "broker" },
];
const internal = new Set([
  "corral.registry.v1.ApiKeyService.VerifyApiKey",
  "corral.registry.v1.ClusterService.ResolveClusters",
  "corral.registry.v1.NodeService.ReportPresence",
]);
const isInternal = (s: DescService, m: DescMethod) =>
  s === TaskLedgerService || s === TaskLogIngestService || s === DispatchService || internal.has(`${s.typeName}.${m.name}`);

const identifier = { name: "bad/Input", version: "v1.0" };
/** Valid requests to mutate, where an empty one would hide nested rules. */
const baselines: Record<string, (schema: DescMessage) => Message> = {
  SubmitJob: (s) => create(s, { name: "ok", tasks: [{ identifier, dependsOn: [] }] } as never),
  ReportResults: (s) =>
    create(s, { results: [{ taskId: "t", attempt: 1, outcome: { case: "started", value: { runnerId: "r" } } }], dispatched: [{ taskId: "t", attempt: 1 }] } as never),
  Enqueue: (s) => create(s, { tasks: [{ taskId: "t", jobId: "j", teamId: "tm", clusterId: "c", identifier }] } as never),
  ReportPresence: (s) => create(s, { reports: [{ teamId: "t", event: 1, node: { id: "n" } }] } as never),
  CreateCluster: (s) => create(s, { name: "ok" } as never),
  UpdateCluster: (s) => create(s, { slug: "ok-AAAAAAAAAAAAAA", name: "ok" } as never),
  CreateLocation: (s) => create(s, { name: "ok", provider: "aws", region: "eu" } as never),
  UpdateLocation: (s) => create(s, { id: "x", name: "ok", provider: "aws" } as never),
  CreateHardware: (s) => create(s, { name: "ok", cpuCores: 1, memoryBytes: 1n } as never),
  CreateConfiguration: (s) => create(s, { name: "ok" } as never),
  CreateRoute: (s) => create(s, { identifier, url: "http://ok.example/" } as never),
  CreateApiKey: (s) => create(s, { name: "ok" } as never),
  QueryJobs: (s) => create(s, { states: [1], clusterSlugs: ["a"], taskStates: [1] } as never),
  ResolveClusters: (s) => create(s, { teamId: "t", slugs: ["a"] } as never),
  Revoke: (s) => create(s, { teamId: "t", jobId: "j", taskIds: ["a"] } as never),
  AcknowledgeDispatch: (s) => create(s, { tasks: [{ taskId: "a" }] } as never),
  AppendTaskLogs: (s) => create(s, { attempts: [{ taskId: "t", attempt: 1, clusterId: "c", lines: [{ message: "m", fieldsJson: "{}" }] }] } as never),
  PublishRelease: (s) =>
    create(s, {
      part: {
        case: "header",
        value: { name: "ok", version: "1.0.0", digest: `sha256:${"0".repeat(64)}`, sizeBytes: 1n, manifest: { identifiers: [identifier] } },
      },
    } as never),
  ReportReleaseStatus: (s) => create(s, { runnerId: "r", releases: [{ name: "ok", version: "1.0.0", state: 1 }] } as never),
};

async function codeOf(run: () => Promise<unknown>): Promise<Code | "ok"> {
  try {
    await run();
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

function parses(schema: DescMessage, bytes: Uint8Array): boolean {
  try {
    fromBinary(schema, bytes);
    return true;
  } catch {
    return false;
  }
}

class Echo extends Task<unknown> {
  static override identifier = { name: "bad/Echo", version: "v1.0" };
  override execute() {}
}

describe("bad input", () => {
  let suite: Suite;
  const url = (w: Where) => suite[w].url;
  const keyFor = (s: DescService, m: DescMethod) => (isInternal(s, m) ? suite.serviceKey : suite.apiKey);
  const figures = { corpus: 0, malformed: 0, utf8: 0, oversized: 0, domain: 0, unknownIds: 0, workViolations: 0 };

  beforeAll(async () => {
    suite = await startSuite({ label: "bad_input" });
  });
  afterAll(async () => {
    console.log(`bad input figures: ${JSON.stringify(figures)}`);
    await suite?.stop();
  });

  async function snapshot() {
    const clusters = createServiceClient(ClusterService, { baseUrl: url("registry"), apiKey: suite.apiKey });
    const jobs = createServiceClient(JobService, { baseUrl: url("jobs"), apiKey: suite.apiKey });
    const keys = createServiceClient(ApiKeyService, { baseUrl: url("registry"), apiKey: suite.apiKey });
    return {
      clusters: (await clusters.listClusters({})).clusters.length,
      jobs: (await jobs.queryJobs({ pageSize: 1000 })).jobs.length,
      keys: (await keys.listApiKeys({})).apiKeys.length,
    };
  }

  async function alive() {
    for (const w of ["registry", "jobs", "broker"] as const) {
      expect(suite[w].child.exitCode, `${w} exited`).toBeNull();
      expect((await fetch(`${url(w)}/healthz`)).status, `${w} healthz`).toBe(200);
    }
  }

  it("answers INVALID_ARGUMENT to every generated invalid message of every RPC, and changes nothing", async () => {
    const before = await snapshot();
    for (const { service, where } of services) {
      const client = createServiceClient(service, { baseUrl: url(where), apiKey: "unused", timeoutMs: 30_000 }) as Record<string, any>;
      for (const method of service.methods) {
        const base = baselines[method.name]?.(method.input) ?? create(method.input);
        const cases = invalidCorpus(method.input, base);
        const keyed = createServiceClient(service, { baseUrl: url(where), apiKey: keyFor(service, method), timeoutMs: 30_000 }) as Record<string, any>;
        for (const c of cases) {
          const got = await codeOf(async () => {
            if (method.methodKind === "server_streaming") {
              for await (const _ of keyed[method.localName](c.message)) break;
            } else if (method.methodKind === "client_streaming") {
              // The invalid message first, as a header would come: it must be refused as it arrives.
              await keyed[method.localName]((async function* () {
                yield c.message;
              })());
            } else await keyed[method.localName](c.message);
          });
          expect(got, `${service.name}.${method.name}: ${c.what}`).toBe(Code.InvalidArgument);
          figures.corpus++;
        }
      }
      void client;
    }
    expect(figures.corpus).toBeGreaterThan(150);
    await alive();
    expect(await snapshot()).toEqual(before);
  }, 180_000);

  it("answers INVALID_ARGUMENT to malformed protobuf bytes and invalid UTF-8 on every unary RPC", async () => {
    const garbage = [
      new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff]),
      new Uint8Array([0x0a, 0x7f, 0x01]), // a length past the end
      new Uint8Array([0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), // varint too long
      new Uint8Array([0x0f]), // wire type 7
    ];
    for (const { service, where } of services) {
      for (const method of service.methods) {
        if (method.methodKind !== "unary") continue;
        const path = `/${service.typeName}/${method.name}`;
        const key = keyFor(service, method);
        for (const bytes of garbage) {
          // Some garbage is a valid unknown field of a message without fields: only what the
          // parser itself rejects is bad input.
          if (parses(method.input, bytes)) continue;
          expect(await connectUnaryRaw(url(where), path, bytes, key), `${path} garbage`).toBe("invalid_argument");
          figures.malformed++;
        }
        // Invalid UTF-8 in the first string field of the request.
        const str = method.input.fields.find((f) => f.fieldKind === "scalar" && f.scalar === 9);
        if (str) {
          const tag = (str.number << 3) | 2;
          expect(await connectUnaryRaw(url(where), path, new Uint8Array([tag, 0x02, 0xff, 0xfe]), key), `${path} utf-8`).toBe(
            "invalid_argument",
          );
          figures.utf8++;
        }
      }
    }
    // The same over gRPC (what @grpc/grpc-js clients speak): status 3 in the trailers.
    for (const [where, path, key] of [
      ["registry", "/corral.registry.v1.ClusterService/GetCluster", suite.apiKey],
      ["jobs", "/corral.jobs.v1.JobService/SubmitJob", suite.apiKey],
      ["broker", "/corral.broker.v1.DispatchService/Enqueue", suite.serviceKey],
    ] as const) {
      const stream = grpcStreamRaw(url(where), path, key);
      stream.write(grpcFrame(garbage[0]!));
      stream.end();
      expect((await stream.done).status, `gRPC ${path}`).toBe(Code.InvalidArgument);
      figures.malformed++;
    }
    await alive();
  }, 120_000);

  it("answers RESOURCE_EXHAUSTED to an oversized message on every service", async () => {
    const big = new Uint8Array(9 * 1024 * 1024).fill(0x41);
    for (const [where, path] of [
      ["registry", "/corral.registry.v1.ClusterService/CreateCluster"],
      ["jobs", "/corral.jobs.v1.JobService/SubmitJob"],
      ["broker", "/corral.broker.v1.DispatchService/Enqueue"],
    ] as const) {
      const key = where === "broker" ? suite.serviceKey : suite.apiKey;
      expect(await connectUnaryRaw(url(where), path, big, key), path).toBe("resource_exhausted");
      figures.oversized++;
    }
    await alive();
  });

  it("answers INVALID_ARGUMENT to versions, sizes and dependencies the schema cannot judge, and accepts a deep chain", async () => {
    const jobs = createServiceClient(JobService, { baseUrl: url("jobs"), apiKey: suite.apiKey });
    const before = await snapshot();
    const t = (extra: Record<string, unknown> = {}, id: Record<string, string> = identifier) =>
      ({ identifier: id, ...extra }) as never;
    const bad: Array<[string, () => Promise<unknown>]> = [
      ["version 1.0", () => jobs.submitJob({ name: "v", tasks: [t({}, { name: "a", version: "1.0" })] })],
      ["version v1", () => jobs.submitJob({ name: "v", tasks: [t({}, { name: "a", version: "v1" })] })],
      ["version v1.0.0", () => jobs.submitJob({ name: "v", tasks: [t({}, { name: "a", version: "v1.0.0" })] })],
      ["empty task name", () => jobs.submitJob({ name: "v", tasks: [t({}, { name: "", version: "v1.0" })] })],
      ["blank job name", () => jobs.submitJob({ name: "   ", tasks: [t()] })],
      ["input above the limit", () => jobs.submitJob({ name: "v", tasks: [t({ input: new Uint8Array(2 * 1024 * 1024) })] })],
      ["depends on itself", () => jobs.submitJob({ name: "v", tasks: [t({ dependsOn: [0] })] })],
      ["a cycle", () => jobs.submitJob({ name: "v", tasks: [t({ dependsOn: [1] }), t({ dependsOn: [0] })] })],
      ["a dependency out of range", () => jobs.submitJob({ name: "v", tasks: [t({ dependsOn: [5] })] })],
    ];
    for (const [what, run] of bad) {
      expect(await codeOf(run), what).toBe(Code.InvalidArgument);
      figures.domain++;
    }
    expect(await snapshot()).toEqual(before);
    // A long dependency chain is valid: accepted, and only its first task is ready.
    const chain = Array.from({ length: 5_000 }, (_, i) => t(i === 0 ? {} : { dependsOn: [i - 1] }));
    const job = (await jobs.submitJob({ name: "deep-chain", tasks: chain })).job!;
    expect(job.stats?.tasksByState?.total).toBe(5_000);
    await alive();
  }, 120_000);

  it("answers NOT_FOUND to unknown ids", async () => {
    const reg = <S extends DescService>(s: S) => createServiceClient(s, { baseUrl: url("registry"), apiKey: suite.apiKey });
    const jobs = createServiceClient(JobService, { baseUrl: url("jobs"), apiKey: suite.apiKey });
    const id = uuidv7();
    const slug = "nothing-AAAAAAAAAAAAAA";
    const calls: Array<[string, () => Promise<unknown>]> = [
      ["GetJob", () => jobs.getJob({ jobId: id })],
      ["GetJobProgress", () => jobs.getJobProgress({ jobId: id })],
      ["ListTasks", () => jobs.listTasks({ jobId: id })],
      ["CancelJob", () => jobs.cancelJob({ jobId: id })],
      ["RetryJob", () => jobs.retryJob({ jobId: id })],
      ["VisualizeJob", () => jobs.visualizeJob({ jobId: id })],
      ["GetJobSpans", () => jobs.getJobSpans({ jobId: id })],
      ["SubmitJob to an unknown cluster", () => jobs.submitJob({ name: "x", clusterSlug: slug, tasks: [rawTask(identifier)] })],
      ["GetCluster", () => reg(ClusterService).getCluster({ slug })],
      ["UpdateCluster", () => reg(ClusterService).updateCluster({ slug, name: "x" })],
      ["DeleteCluster", () => reg(ClusterService).deleteCluster({ slug })],
      ["GetLocation", () => reg(LocationService).getLocation({ id })],
      ["UpdateLocation", () => reg(LocationService).updateLocation({ id, name: "x" })],
      ["GetHardware", () => reg(HardwareService).getHardware({ id })],
      ["GetConfiguration", () => reg(ConfigurationService).getConfiguration({ name: "nothing" })],
      ["DeleteConfiguration", () => reg(ConfigurationService).deleteConfiguration({ name: "nothing" })],
      ["GetRoute", () => reg(RouteService).getRoute({ id })],
      ["DeleteRoute", () => reg(RouteService).deleteRoute({ id })],
      ["GetNode", () => reg(NodeService).getNode({ id })],
      ["ListNodes", () => reg(NodeService).listNodes({ clusterSlug: slug })],
      ["RevokeApiKey", () => reg(ApiKeyService).revokeApiKey({ id: "nothing" })],
    ];
    for (const [what, run] of calls) {
      expect(await codeOf(run), what).toBe(Code.NotFound);
      figures.unknownIds++;
    }
  });

  it("ends only the offending Work stream on protocol violations", async () => {
    // A well-behaved runner that must not notice anything.
    const runner = new Runner({ url: url("broker"), apiKey: suite.apiKey, tasks: [Echo], logger: createSdkLogger("bad-input", "error") });
    let welcomes = 0;
    runner.on("welcome", () => welcomes++);
    const running = runner.runForever({ handleSignals: false });
    await untilTrue("runner welcomed", () => welcomes === 1);

    const broker = createServiceClient(TaskBrokerService, { baseUrl: url("broker"), apiKey: suite.apiKey, timeoutMs: 30_000 });
    const m = (message: unknown) => create(WorkRequestSchema, { message } as never);
    const hello = m({ case: "hello", value: { runnerId: "bad", identifiers: [identifier], slots: 2 } });
    /** Sends `first`, waits for the Welcome when it was a Hello, sends `then`; resolves the stream's end code and WorkErrors. */
    async function violate(first: WorkRequest, then: WorkRequest[]): Promise<{ code: Code | "ok"; errors: number; message?: string }> {
      const abort = new AbortController();
      let welcomed: () => void = () => {};
      const welcome = new Promise<void>((r) => (welcomed = r));
      async function* input() {
        yield first;
        if (first.message.case === "hello") await welcome;
        yield* then;
        await new Promise((r) => abort.signal.addEventListener("abort", r));
      }
      let errors = 0;
      try {
        for await (const res of broker.work(input(), { signal: abort.signal })) {
          if (res.message.case === "welcome") welcomed();
          if (res.message.case === "error") errors++;
        }
        return { code: "ok", errors };
      } catch (err) {
        return { code: ConnectError.from(err).code, errors, message: ConnectError.from(err).rawMessage };
      } finally {
        abort.abort();
      }
    }
    const violations: Array<[string, WorkRequest, WorkRequest[], Code]> = [
      ["Credit before Hello", m({ case: "credit", value: { n: 1 } }), [], Code.InvalidArgument],
      ["Heartbeat before Hello", m({ case: "heartbeat", value: {} }), [], Code.InvalidArgument],
      ["a second Hello", hello, [hello], Code.FailedPrecondition],
      [
        "a result for a lease never held",
        hello,
        [m({ case: "completed", value: { lease: { taskId: uuidv7(), attempt: 1, token: "forged" } } })],
        Code.FailedPrecondition,
      ],
      ["a failure for a lease never held", hello, [m({ case: "failed", value: { lease: { taskId: uuidv7(), attempt: 3, token: "x" } } })], Code.FailedPrecondition],
      ["credit above twice the slots", hello, [m({ case: "credit", value: { n: 10 } })], Code.ResourceExhausted],
      ["credit above the rule", hello, [m({ case: "credit", value: { n: 1_000_000 } })], Code.InvalidArgument],
      ["a result without its lease", hello, [m({ case: "completed", value: {} })], Code.InvalidArgument],
      ["an empty message", hello, [m({ case: undefined })], Code.InvalidArgument],
      ["a Hello breaking its rules", m({ case: "hello", value: { runnerId: "", identifiers: [], slots: 0 } }), [], Code.InvalidArgument],
    ];
    for (const [what, first, then, expected] of violations) {
      const { code, errors } = await violate(first, then);
      expect(code, what).toBe(expected);
      expect(errors, `${what}: a WorkError precedes the end`).toBeGreaterThan(0);
      figures.workViolations++;
    }
    // The generated corpus for the stream's messages: each invalid Hello variant as a first message.
    for (const c of invalidCorpus(WorkRequestSchema, hello)) {
      const { code, message } = await violate(c.message as WorkRequest, []);
      expect(code, `Work: ${c.what} (${message})`).toBe(Code.InvalidArgument);
      figures.corpus++;
    }
    // Garbage bytes after a Hello, on a raw gRPC stream.
    const raw = grpcStreamRaw(url("broker"), "/corral.broker.v1.TaskBrokerService/Work", suite.apiKey);
    raw.write(grpcFrame(toBinary(WorkRequestSchema, hello)));
    await untilTrue("welcomed on the raw stream", () => raw.received() > 0, 15_000);
    raw.write(grpcFrame(new Uint8Array([0xff, 0xff, 0xff, 0xff])));
    expect((await raw.done).status, "garbage after Hello").toBe(Code.InvalidArgument);
    figures.workViolations++;
    // The good runner kept its one session and still runs work.
    const jobs = createServiceClient(JobService, { baseUrl: url("jobs"), apiKey: suite.apiKey });
    const job = (await jobs.submitJob({ name: "after-violations", tasks: [rawTask(Echo.identifier)] })).job!;
    await untilTrue("the good runner runs a job", async () => (await jobs.getJob({ jobId: job.id })).job?.state === JobState.COMPLETED, 30_000);
    expect(welcomes).toBe(1);
    await runner.stop();
    await running;
    await alive();
  }, 120_000);
});
