// The Client's area clients against an in-process router: request shapes, typed errors,
// pagination, retries and jobs().wait().
import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import {
  ClusterSchema,
  ClusterService,
  JobSchema,
  JobService,
  JobState,
  type CreateClusterRequest,
  type SubmitJobRequest,
} from "@corral/proto";
import { Client } from "./client.js";
import { ClusterNotFoundError, JobFailedError, JobNotFoundError, ValidationError } from "./errors.js";
import { createAuthInterceptor, createRetryInterceptor } from "./transport.js";
import { Echo } from "./tasks/echo.js";
import { rawTask } from "./submission.js";

describe("client.clusters()", () => {
  it("sends create options, pages through all(), maps NOT_FOUND", async () => {
    const seen: CreateClusterRequest[] = [];
    const auth: string[] = [];
    const transport = createRouterTransport(
      (router) =>
        router.service(ClusterService, {
          createCluster(req, ctx) {
            seen.push(req);
            auth.push(ctx.requestHeader.get("authorization") ?? "");
            return { cluster: { slug: `${req.name}-CvufcSxcC9SKfe`, name: req.name }, created: true };
          },
          listClusters(req) {
            const page = Number(req.pageToken || "0");
            return {
              clusters: [create(ClusterSchema, { slug: `c${page}` })],
              nextPageToken: page < 2 ? String(page + 1) : "",
            };
          },
          getCluster(req) {
            throw new ConnectError(`cluster ${JSON.stringify(req.slug)} not found`, Code.NotFound);
          },
        }),
      { transport: { interceptors: [createAuthInterceptor("corral_k_s")] } },
    );
    const client = new Client({ transport });
    const cluster = await client.clusters().create("testing", {
      description: "d",
      spec: { runnerCount: 2, runnerMemory: "16 GiB" },
      configuration: "corral/default",
      getIfExists: true,
    });
    expect(cluster.slug).toBe("testing-CvufcSxcC9SKfe");
    expect(seen[0]).toMatchObject({ name: "testing", description: "d", configuration: "corral/default", getIfExists: true });
    expect(seen[0]!.spec?.runnerMemoryBytes).toBe(16n * 1024n ** 3n);
    expect(seen[0]!.spec?.runnerCount).toBe(2);
    expect(auth[0]).toBe("Bearer corral_k_s");
    expect((await client.clusters().all()).map((c) => c.slug)).toEqual(["c0", "c1", "c2"]);
    const err = await client.clusters().find("missing").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClusterNotFoundError);
    expect((err as ClusterNotFoundError).code).toBe(Code.NotFound);
  });

  it("rejects a bad memory size before calling", async () => {
    const client = new Client({ transport: createRouterTransport(() => {}) });
    await expect(client.clusters().create("x", { spec: { runnerMemory: "lots" } })).rejects.toBeInstanceOf(ValidationError);
  });
});

describe("retries", () => {
  it("repeats unary calls that answer UNAVAILABLE", async () => {
    let calls = 0;
    const transport = createRouterTransport(
      (router) =>
        router.service(ClusterService, {
          getCluster() {
            if (++calls < 3) throw new ConnectError("restarting", Code.Unavailable);
            return { cluster: { slug: "default-x" } };
          },
        }),
      { transport: { interceptors: [createRetryInterceptor({ baseDelayMs: 1, maxDelayMs: 2 })] } },
    );
    const client = new Client({ transport });
    expect((await client.clusters().find()).slug).toBe("default-x");
    expect(calls).toBe(3);
  });

  it("gives up after maxAttempts", async () => {
    let calls = 0;
    const transport = createRouterTransport(
      (router) =>
        router.service(ClusterService, {
          getCluster() {
            calls++;
            throw new ConnectError("down", Code.Unavailable);
          },
        }),
      { transport: { interceptors: [createRetryInterceptor({ maxAttempts: 2, baseDelayMs: 1 })] } },
    );
    const err = await new Client({ transport }).clusters().find().catch((e: unknown) => e);
    expect((err as { code: Code }).code).toBe(Code.Unavailable);
    expect(calls).toBe(2);
  });
});

describe("client.jobs()", () => {
  it("submits task instances and raw submissions to a cluster", async () => {
    const seen: SubmitJobRequest[] = [];
    const transport = createRouterTransport((router) =>
      router.service(JobService, {
        submitJob(req) {
          seen.push(req);
          return { job: { id: "j1", name: req.name, clusterSlug: req.clusterSlug }, created: true };
        },
      }),
    );
    const jobs = new Client({ transport }).jobs();
    const job = await jobs.submit("hello", [new Echo({ message: "hi" }), rawTask({ name: "x/Y", version: "v1.2" }, { a: 1 })], {
      cluster: "testing-abc",
      maxRetries: 2,
      idempotencyKey: "k1",
    });
    expect(job.id).toBe("j1");
    const req = seen[0]!;
    expect(req).toMatchObject({ name: "hello", clusterSlug: "testing-abc", idempotencyKey: "k1" });
    expect(req.tasks.map((t) => [t.identifier?.name, t.identifier?.version, t.maxRetries])).toEqual([
      ["corral/Echo", "v1.0", 2],
      ["x/Y", "v1.2", 2],
    ]);
    expect(JSON.parse(new TextDecoder().decode(req.tasks[0]!.input))).toEqual({ message: "hi" });
  });

  it("wait() follows WatchJob, survives a dropped stream and resolves with the completed job", async () => {
    let watches = 0;
    const progress: string[] = [];
    const transport = createRouterTransport((router) =>
      router.service(JobService, {
        async *watchJob(req) {
          watches++;
          yield { job: { id: req.jobId, state: JobState.RUNNING, progress: [{ label: "p", total: 2n, done: 1n }] } };
          if (watches === 1) throw new ConnectError("broker restart", Code.Unavailable);
          yield { job: { id: req.jobId, state: JobState.COMPLETED, progress: [{ label: "p", total: 2n, done: 2n }] } };
        },
        getJob(req) {
          return { job: create(JobSchema, { id: req.jobId, state: JobState.RUNNING }) };
        },
      }),
    );
    const job = await new Client({ transport }).jobs().wait("j1", {
      onProgress: ({ job }) => progress.push(`${JobState[job.state]} ${job.progress[0]?.done}/${job.progress[0]?.total}`),
    });
    expect(job.state).toBe(JobState.COMPLETED);
    expect(watches).toBe(2);
    expect(progress).toEqual(["RUNNING 1/2", "RUNNING 1/2", "COMPLETED 2/2"]);
  });

  it("wait() throws JobFailedError for a failed job and JobNotFoundError for a missing one", async () => {
    const transport = createRouterTransport((router) =>
      router.service(JobService, {
        async *watchJob(req) {
          if (req.jobId === "missing") throw new ConnectError('job "missing" not found', Code.NotFound);
          yield { job: { id: req.jobId, name: "n", state: JobState.FAILED } };
        },
      }),
    );
    const jobs = new Client({ transport }).jobs();
    const failed = await jobs.wait("j1").catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(JobFailedError);
    expect((failed as JobFailedError).job.id).toBe("j1");
    await expect(jobs.wait("missing")).rejects.toBeInstanceOf(JobNotFoundError);
  });
});
