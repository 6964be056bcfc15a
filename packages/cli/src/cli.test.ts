// The CLI against an in-process router: arguments to requests, output, exit codes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createRouterTransport, type ConnectRouter } from "@connectrpc/connect";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ClusterService, JobService, JobState, NodeService, RuntimeService, TaskErrorKind, TaskState, type SubmitJobRequest } from "@corral/proto";
import { Client, Echo } from "@corral/sdk";
import { runCli } from "./run.js";
import { ExitCode } from "./exit-codes.js";
import type { Io } from "./output.js";
import { resolveConnection } from "./connection.js";
import { registerJobTemplate } from "./templates.js";
import { loadTaskModule } from "./commands/runner.js";
import { createProgressView } from "./progress-bars.js";

const submitted: SubmitJobRequest[] = [];
const deleted: Array<{ slug: string; force: boolean; canceledBefore: string[] }> = [];
const canceled: string[] = [];

function routes(router: ConnectRouter) {
  router.service(ClusterService, {
    listClusters: () => ({
      clusters: [
        { slug: "default-AAAAAAAAAAAAAA", name: "default", isDefault: true, spec: { runnerCount: 1, runnerMemoryBytes: 16n * 1024n ** 3n } },
        { slug: "testing-CvufcSxcC9SKfe", name: "testing" },
      ],
    }),
    deleteCluster(req) {
      deleted.push({ slug: req.slug, force: req.force, canceledBefore: [...canceled] });
      return {};
    },
    getCluster(req, ctx) {
      if (ctx.requestHeader.get("authorization") !== "Bearer good") throw new ConnectError("invalid or revoked API key", Code.Unauthenticated);
      throw new ConnectError(`cluster ${JSON.stringify(req.slug)} not found`, Code.NotFound);
    },
  });
  router.service(RuntimeService, {
    getRuntimeConfig: () => ({
      serverVersion: "0.1.0",
      services: ["cluster-registry", "job-service", "task-broker"],
      limits: { maxTaskInputBytes: 1048576n, maxTasksPerSubmission: 10000 },
      lease: { leaseDuration: { seconds: 30n, nanos: 0 }, maxLeaseExpiries: 3 },
    }),
  });
  router.service(NodeService, {
    listRunningNodes: (req) => ({
      nodes: req.clusterSlug === "busy" ? [{ id: "r-1", clusterSlug: "busy", identifiers: [{ name: "corral/Echo", version: "v1.1" }] }] : [],
    }),
  });
  router.service(JobService, {
    submitJob(req) {
      submitted.push(req);
      return { job: { id: `job-${submitted.length}`, name: req.name, clusterSlug: req.clusterSlug, state: JobState.SUBMITTED }, created: true };
    },
    queryJobs: (req) => ({
      jobs: req.clusterSlugs.includes("busy-x") ? [{ id: "open-1", clusterSlug: "busy-x", state: JobState.RUNNING }] : [],
    }),
    cancelJob(req) {
      canceled.push(req.jobId);
      return { job: { id: req.jobId, state: JobState.CANCELED } };
    },
    getJob(req) {
      if (req.jobId === "stuck") {
        return { job: { id: req.jobId, name: "stuck", state: JobState.SUBMITTED, stats: { tasksByState: { queued: 2, total: 2 } } } };
      }
      return { job: { id: req.jobId, name: "waits", state: JobState.SUBMITTED } };
    },
    listTasks(req) {
      if (req.jobId === "stuck") {
        return {
          tasks: [
            { id: "t-1", jobId: "stuck", identifier: { name: "my/Leaf", version: "v1.0" }, clusterSlug: "busy", state: TaskState.QUEUED },
            { id: "t-2", jobId: "stuck", identifier: { name: "corral/Echo", version: "v1.0" }, clusterSlug: "nobody", state: TaskState.QUEUED },
          ],
        };
      }
      if (req.jobId === "bad") {
        return {
          tasks: [{ id: "t-9", jobId: "bad", identifier: { name: "my/Leaf", version: "v1.0" }, state: TaskState.FAILED, attempt: 3, maxRetries: 2, error: "boom" }],
        };
      }
      if (req.jobId === "j-1") {
        return {
          tasks: [
            { id: "t-delayed", identifier: { name: "a", version: "v1.0" }, state: TaskState.QUEUED, attempt: 1, waitReason: "delayed until 2030-01-01T00:00:00.000Z" },
            {
              id: "t-retry",
              identifier: { name: "b", version: "v1.0" },
              state: TaskState.QUEUED,
              attempt: 2,
              waitReason: "delayed until 2030-01-01T00:00:02.000Z",
              error: "too slow",
              errorKind: TaskErrorKind.TIMED_OUT,
            },
            { id: "t-failed", identifier: { name: "c", version: "v1.0" }, state: TaskState.FAILED, attempt: 1, error: "not started", errorKind: TaskErrorKind.SCHEDULE_TO_START_TIMED_OUT },
          ],
        };
      }
      return { tasks: [] };
    },
    async *watchJob(req) {
      yield { job: { id: req.jobId, state: JobState.RUNNING, progress: [{ label: "tiles", total: 4n, done: 1n }] } };
      yield {
        job: {
          id: req.jobId,
          state: req.jobId === "bad" ? JobState.FAILED : JobState.COMPLETED,
          progress: [{ label: "tiles", total: 4n, done: 4n }],
        },
      };
    },
  });
}

async function cli(args: string[], extra: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (s) => void out.push(s), err: (s) => void err.push(s), isTTY: false };
  const code = await runCli(args, {
    io,
    env: extra.env ?? {},
    cwd: extra.cwd ?? tmpdir(),
    createClient: (c) =>
      new Client({
        transport: createRouterTransport(routes, {
          transport: {
            interceptors: [
              (next) => (req) => {
                if (c.apiKey) req.header.set("authorization", `Bearer ${c.apiKey}`);
                return next(req);
              },
            ],
          },
        }),
      }),
  });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("corral cluster", () => {
  it("lists clusters as a table and as JSON", async () => {
    const t = await cli(["cluster", "list"]);
    expect(t.code).toBe(ExitCode.ok);
    expect(t.out).toMatch(/^SLUG\s+NAME\s+DEFAULT/);
    expect(t.out).toContain("testing-CvufcSxcC9SKfe");
    expect(t.out).toContain("16 GiB");
    const j = await cli(["--json", "cluster", "list"]);
    const parsed = JSON.parse(j.out) as Array<{ slug: string; spec?: { runnerMemoryBytes?: string } }>;
    expect(parsed.map((c) => c.slug)).toEqual(["default-AAAAAAAAAAAAAA", "testing-CvufcSxcC9SKfe"]);
    expect(parsed[0]!.spec?.runnerMemoryBytes).toBe(String(16n * 1024n ** 3n));
  });

  it("exits 3 for not found and 4 for a bad key", async () => {
    const nf = await cli(["--api-key", "good", "cluster", "get", "nope"]);
    expect(nf.code).toBe(ExitCode.notFound);
    expect(nf.err).toContain("not found");
    const auth = await cli(["--api-key", "bad", "cluster", "get", "nope"]);
    expect(auth.code).toBe(ExitCode.auth);
  });

  it("exits 2 for usage errors", async () => {
    expect((await cli(["cluster", "create", "x", "--memory", "lots"])).code).toBe(ExitCode.usage);
    expect((await cli(["cluster", "create", "x", "--runners", "-3"])).code).toBe(ExitCode.usage);
    expect((await cli(["nonsense"])).code).toBe(ExitCode.usage);
  });
});

describe("corral job", () => {
  it("submits --task/--input pairs to a cluster", async () => {
    submitted.length = 0;
    const r = await cli([
      "job", "submit",
      "--task", "corral/Echo@v1.0", "--input", '{"message":"hi"}',
      "--task", "corral/RunScript@v1.0", "--input", '{"command":"true"}',
      "--cluster", "testing-CvufcSxcC9SKfe", "--max-retries", "2", "--idempotency-key", "k",
    ]);
    expect(r.code).toBe(ExitCode.ok);
    const req = submitted[0]!;
    expect(req.name).toBe("corral/Echo");
    expect(req.clusterSlug).toBe("testing-CvufcSxcC9SKfe");
    expect(req.idempotencyKey).toBe("k");
    expect(req.tasks.map((t) => [t.identifier?.name, t.maxRetries])).toEqual([["corral/Echo", 2], ["corral/RunScript", 2]]);
    expect(JSON.parse(new TextDecoder().decode(req.tasks[0]!.input))).toEqual({ message: "hi" });
    expect(r.out).toContain("job-1");
  });

  it("submits scheduling flags as the job's task defaults and its roots' start time", async () => {
    submitted.length = 0;
    const r = await cli([
      "job", "submit", "--task", "corral/Echo@v1.0",
      "--timeout", "30s", "--start-timeout", "5m", "--retry-backoff", "1s", "--not-before", "2030-01-01T00:00:00Z", "--delay", "90s",
      "--priority", "7",
    ]);
    expect(r.code).toBe(ExitCode.ok);
    const req = submitted[0]!;
    expect(req.taskDefaults?.executionTimeout).toEqual(durationFromMs(30_000));
    expect(req.taskDefaults?.scheduleToStartTimeout).toEqual(durationFromMs(300_000));
    expect(req.taskDefaults?.retryBackoff?.initialInterval).toEqual(durationFromMs(1_000));
    expect(req.tasks[0]!.notBefore).toEqual(timestampFromDate(new Date("2030-01-01T00:00:00Z")));
    expect(req.tasks[0]!.startDelay).toEqual(durationFromMs(90_000));
    expect(req.tasks[0]!.priority).toBe(7);
  });

  it("rejects a duration or a time it cannot read with exit 2", async () => {
    expect((await cli(["job", "submit", "--task", "a@v1.0", "--timeout", "soon"])).code).toBe(ExitCode.usage);
    expect((await cli(["job", "submit", "--task", "a@v1.0", "--not-before", "tomorrow"])).code).toBe(ExitCode.usage);
    expect((await cli(["job", "submit", "--task", "a@v1.0", "--priority", "10"])).code).toBe(ExitCode.usage);
  });

  it("shows why each task waits, and how attempts ended, in job get --tasks", async () => {
    const r = await cli(["job", "get", "j-1", "--tasks"]);
    expect(r.code).toBe(ExitCode.ok);
    const text = r.out;
    expect(text).toContain("delayed until 2030-01-01T00:00:00.000Z");
    expect(text).toContain("delayed until 2030-01-01T00:00:02.000Z (last attempt: timed out)");
    expect(text).toContain("not started in time: not started");
  });

  it("rejects input that is not JSON and a bad identifier with exit 2", async () => {
    expect((await cli(["job", "submit", "--task", "a@v1.0", "--input", "{nope"])).code).toBe(ExitCode.usage);
    expect((await cli(["job", "submit", "--task", "a@1"])).code).toBe(ExitCode.usage);
    const bare = await cli(["job", "submit", "--task", "corral/Echo"]);
    expect(bare.code).toBe(ExitCode.usage);
    expect(bare.err).toContain("no version");
    expect((await cli(["job", "submit", "unknown-template"])).code).toBe(ExitCode.usage);
  });

  it("submits a named template", async () => {
    submitted.length = 0;
    registerJobTemplate("hello", {
      description: "say hello",
      build: ({ cluster }) => ({ name: `hello on ${cluster ?? "default"}`, tasks: [new Echo({ message: "hello" })] }),
    });
    const r = await cli(["job", "submit", "hello", "--cluster", "c-1"]);
    expect(r.code).toBe(ExitCode.ok);
    expect(submitted[0]!.name).toBe("hello on c-1");
    expect(submitted[0]!.tasks[0]!.identifier?.name).toBe("corral/Echo");
  });

  it("waits with plain progress lines off a terminal; exit 0 when completed, 1 when failed", async () => {
    const ok = await cli(["job", "wait", "good"]);
    expect(ok.code).toBe(ExitCode.ok);
    expect(ok.out.split("\n")).toEqual(["running: tiles 1/4", "completed: tiles 4/4", "job good completed"]);
    const bad = await cli(["job", "wait", "bad"]);
    expect(bad.code).toBe(ExitCode.failed);
    expect(bad.err).toContain("failed");
    // Why it failed: the failing task, its attempt and its error.
    expect(bad.err).toContain("task t-9 (my/Leaf@v1.0) failed on attempt 3 of 3: boom");
    const submitWait = await cli(["job", "submit", "--task", "x@v1.0", "--wait"]);
    expect(submitWait.code).toBe(ExitCode.ok);
  });
});

describe("corral cluster delete", () => {
  it("--force cancels the cluster's unfinished jobs, then deletes it with force", async () => {
    const r = await cli(["cluster", "delete", "busy-x", "--force"]);
    expect(r.code, r.err).toBe(ExitCode.ok);
    expect(deleted.at(-1)).toEqual({ slug: "busy-x", force: true, canceledBefore: ["open-1"] });
    expect(r.out).toContain("canceled 1 job: open-1");
    const plain = await cli(["cluster", "delete", "quiet-x"]);
    expect(plain.code).toBe(ExitCode.ok);
    expect(deleted.at(-1)).toMatchObject({ slug: "quiet-x", force: false });
  });
});

describe("corral runtime", () => {
  it("prints the suite's runtime config and where the URL and key came from", async () => {
    const r = await cli(["runtime"], { env: { CORRAL_URL: "http://suite:7700", CORRAL_API_KEY: "corral_rt1_0123456789abcdef0123" } });
    expect(r.code, r.err).toBe(ExitCode.ok);
    expect(r.out).toMatch(/server version:\s+0\.1\.0/);
    expect(r.out).toMatch(/max task input:\s+1 MiB/);
    expect(r.out).toMatch(/lease duration:\s+30\.0s/);
    expect(r.out).toMatch(/max lease expiries:\s+3/);
    expect(r.out).toContain("rt1 (from CORRAL_API_KEY)");
    expect(r.out).not.toContain("0123456789abcdef0123");
    const json = await cli(["runtime", "--json"]);
    expect(JSON.parse(json.out)).toMatchObject({ serverVersion: "0.1.0", lease: { leaseDuration: "30s" } });
  });
});

describe("why a job waits", () => {
  it("job get names the cluster without runners and the task class no runner serves", async () => {
    const r = await cli(["job", "get", "stuck"]);
    expect(r.code).toBe(ExitCode.ok);
    expect(r.out).toContain("waiting: no online runner on cluster busy serves my/Leaf@v1.0 (1 queued task wait)");
    expect(r.out).toContain("waiting: no online runner on cluster nobody (1 queued task wait)");
  });
});

describe("progress bars", () => {
  it("redraw in place on a terminal", () => {
    const out: string[] = [];
    const view = createProgressView({ out: (s) => void out.push(s), err: () => {}, isTTY: true });
    view.update("running", [{ label: "a", total: 10n, done: 5n } as never]);
    view.update("running", [{ label: "a", total: 10n, done: 5n } as never]); // unchanged: not drawn
    view.update("completed", [{ label: "a", total: 10n, done: 10n } as never]);
    expect(out.length).toBe(2);
    expect(out[0]).toContain("[###############---------------] 5/10 50%");
    expect(out[1]!.startsWith("\x1b[2A")).toBe(true);
    expect(out[1]).toContain("10/10 100%");
  });
});

describe("connection settings", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "corral-cli-"));
    await mkdir(join(dir, ".corral"));
    await writeFile(join(dir, ".corral", "credentials.json"), JSON.stringify({ url: "http://dev:7700", apiKey: "corral_dev_key" }));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("take flags over the environment over .corral/credentials.json", () => {
    expect(resolveConnection({}, {}, dir)).toMatchObject({ url: "http://dev:7700", apiKey: "corral_dev_key" });
    expect(resolveConnection({}, { CORRAL_URL: "http://env", CORRAL_API_KEY: "envkey" }, dir)).toMatchObject({ url: "http://env", apiKey: "envkey" });
    expect(resolveConnection({ url: "http://flag", apiKey: "flagkey" }, { CORRAL_API_KEY: "envkey" }, dir)).toMatchObject({
      url: "http://flag",
      apiKey: "flagkey",
    });
    expect(resolveConnection({}, {}, tmpdir()).url).toBe("http://127.0.0.1:7700");
  });

  it("find .corral/credentials.json in a parent directory", async () => {
    const sub = join(dir, "src", "tasks");
    await mkdir(sub, { recursive: true });
    expect(resolveConnection({}, {}, sub)).toMatchObject({ url: "http://dev:7700", apiKey: "corral_dev_key" });
  });

  it("loads task classes from a module", async () => {
    const file = join(dir, "tasks.mjs");
    await writeFile(
      file,
      `export class A { static identifier = { name: "a/A", version: "v1.0" }; execute() {} }
       export const more = [class B { execute() {} }];
       export const notATask = 42;`,
    );
    const classes = await loadTaskModule("tasks.mjs", dir);
    expect(classes.map((c) => c.name).sort()).toEqual(["A", "B"]);
    await writeFile(join(dir, "empty.mjs"), "export const x = 1;");
    await expect(loadTaskModule("empty.mjs", dir)).rejects.toThrow("exports no task classes");
  });
});
