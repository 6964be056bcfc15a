// Workflows through the SDK against the three services as separate processes: a fan-out of 1,000
// subtasks with progress, cancellation reaching a running task's signal, the built-in RunScript
// running real commands, and a plain @grpc/grpc-js client reading a job that ran.
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { GetJobRequestSchema, GetJobResponseSchema, JobState, TaskState, type GetJobResponse } from "@corral/proto";
import {
  JobCanceledError,
  JobFailedError,
  RunScript,
  Task,
  builtinTasks,
  type Client,
  type ExecutionContext,
  type JobUpdate,
  type Runner,
} from "@corral/sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startRunner, suiteClient, suiteRunner, waitUntil } from "../support/clients.js";
import { grpcMethod } from "../support/grpc-js.js";
import { startSuite, type Suite } from "../support/suite.js";

class FanOut extends Task<{ count: number }> {
  static override identifier = { name: "e2e/FanOut", version: "v1.0" };
  override execute(ctx: ExecutionContext): void {
    const leaves = [];
    for (let i = 0; i < this.input.count; i++) leaves.push(new Leaf({ index: i }));
    ctx.submitSubtasks(leaves);
    ctx.progress("leaves").add(this.input.count);
  }
}

class Leaf extends Task<{ index: number }> {
  static override identifier = { name: "e2e/Leaf", version: "v1.0" };
  override execute(ctx: ExecutionContext): void {
    ctx.progress("leaves").done(1);
  }
}

/** What the Blocking tasks of this process saw: each start, and the abort reason by task id. */
const blocking = {
  aborted: new Map<string, unknown>(),
  onStart: (_taskId: string) => {},
};

/** Runs until its signal aborts, then records the reason and stops with it. */
class Blocking extends Task<{ label: string }> {
  static override identifier = { name: "e2e/Blocking", version: "v1.0" };
  override async execute(ctx: ExecutionContext): Promise<void> {
    blocking.onStart(ctx.task.id);
    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      ctx.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    blocking.aborted.set(ctx.task.id, ctx.signal.reason);
    throw ctx.signal.reason;
  }
}

/** Scripts are opt-in per runner (and as root, which tests here may run as, opt-in again). */
const allowScripts = { allowScripts: true, allowScriptsAsRoot: process.getuid?.() === 0 };

const JobServiceClient = grpc.makeGenericClientConstructor(
  { getJob: grpcMethod("/corral.jobs.v1.JobService/GetJob", GetJobRequestSchema, GetJobResponseSchema) },
  "JobService",
);

describe("SDK workflows over separate service processes", { timeout: 120_000 }, () => {
  let suite: Suite;
  let client: Client;
  const runners: Runner[] = [];

  beforeAll(async () => {
    suite = await startSuite({ label: "e2e-sdk" });
    client = suiteClient(suite);
  });
  afterEach(async () => {
    await Promise.all(runners.splice(0).map((r) => r.stop()));
  });
  afterAll(async () => {
    await suite?.stop();
  });

  async function run(runner: Runner): Promise<Runner> {
    runners.push(runner);
    await startRunner(runner);
    return runner;
  }

  it("fans out 1,000 subtasks and completes with progress 1000/1000", async () => {
    const cluster = await client.clusters().create("fan out");
    await run(suiteRunner(suite, { cluster: cluster.slug, tasks: [FanOut, Leaf], concurrency: 16 }));
    const job = await client.jobs().submit("fan out", new FanOut({ count: 1000 }), { cluster: cluster.slug });
    const seen: JobUpdate[] = [];
    const done = await client.jobs().wait(job.id, { onProgress: (u) => seen.push(u) });
    expect(done.state).toBe(JobState.COMPLETED);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.at(-1)!.job.state).toBe(JobState.COMPLETED);

    const progress = await client.jobs().progress(job.id);
    expect(progress.state).toBe(JobState.COMPLETED);
    expect(progress.progress).toHaveLength(1);
    expect(progress.progress[0]).toMatchObject({ label: "leaves", total: 1000n, done: 1000n });
    expect(progress.tasksByState).toMatchObject({ total: 1001, computed: 1001, queued: 0, running: 0, failed: 0 });
    const [root] = await client.jobs().tasks(job.id);
    expect(root!.subtaskCount).toBe(1000);
    expect(await client.jobs().tasks(job.id, { parentId: root!.id })).toHaveLength(1000);
  });

  it("cancel aborts a running task's signal, never starts the queued one, and ends the job CANCELED", async () => {
    const cluster = await client.clusters().create("cancel");
    // One slot: the first root runs, the second waits behind it.
    const runner = await run(suiteRunner(suite, { cluster: cluster.slug, tasks: [Blocking], concurrency: 1 }));
    const started: string[] = [];
    const firstStarted = new Promise<string>((resolve) => {
      blocking.onStart = (id) => {
        started.push(id);
        resolve(id);
      };
    });
    const job = await client.jobs().submit("cancel me", [new Blocking({ label: "a" }), new Blocking({ label: "b" })], {
      cluster: cluster.slug,
    });
    const runningId = await firstStarted;
    await waitUntil("the task to be RUNNING on the server", async () => {
      const tasks = await client.jobs().tasks(job.id);
      return tasks.find((t) => t.id === runningId)?.state === TaskState.RUNNING;
    });

    const canceled = await client.jobs().cancel(job.id);
    expect(canceled.canceled).toBe(true);
    const err = await client.jobs().wait(job.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobCanceledError);
    expect((await client.jobs().find(job.id)).state).toBe(JobState.CANCELED);

    await waitUntil("the task to observe the abort", async () => blocking.aborted.has(runningId));
    const reason = blocking.aborted.get(runningId);
    expect(reason).toBeInstanceOf(Error);
    expect((reason as Error).name).toBe("AbortError");
    // The running task's end reaches job-service after the runner has seen the abort: wait for it.
    await waitUntil("both tasks to be CANCELED", async () => {
      const tasks = await client.jobs().tasks(job.id);
      return tasks.length === 2 && tasks.every((t) => t.state === TaskState.CANCELED);
    });
    // Its slot is free again and nothing was handed to it: the queued root never started.
    await waitUntil("the runner to be idle", async () => runner.state.isIdle());
    expect(started).toEqual([runningId]);
  });

  it("RunScript runs a real command; a failing one fails the task and the job", async () => {
    const cluster = await client.clusters().create("scripts");
    await run(suiteRunner(suite, { cluster: cluster.slug, tasks: [...builtinTasks], concurrency: 2, ...allowScripts }));

    const ok = await client.jobs().submit("say hi", new RunScript({ command: "sh", args: ["-c", "echo hi; exit 0"] }), {
      cluster: cluster.slug,
    });
    expect((await client.jobs().wait(ok.id)).state).toBe(JobState.COMPLETED);
    const [okTask] = await client.jobs().tasks(ok.id);
    expect(okTask!.state).toBe(TaskState.COMPUTED);
    expect(okTask!.display.split("\n")).toEqual(["exit 0", "hi", ""]);

    const bad = await client.jobs().submit(
      "fail",
      new RunScript({ command: "sh", args: ["-c", "echo to-stderr >&2; exit 3"] }),
      { cluster: cluster.slug },
    );
    const err = await client.jobs().wait(bad.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobFailedError);
    expect(err).not.toBeInstanceOf(JobCanceledError);
    expect((await client.jobs().find(bad.id)).state).toBe(JobState.FAILED);
    const [badTask] = await client.jobs().tasks(bad.id);
    expect(badTask!.state).toBe(TaskState.FAILED);
    // The output tail travels with the failure.
    expect(badTask!.error).toContain("to-stderr");
  });

  it("RunScript honours a cancel by killing the command", async () => {
    const cluster = await client.clusters().create("long script");
    await run(suiteRunner(suite, { cluster: cluster.slug, tasks: [...builtinTasks], ...allowScripts }));
    const job = await client.jobs().submit("sleep", new RunScript({ command: "sh", args: ["-c", "sleep 600"] }), {
      cluster: cluster.slug,
    });
    await waitUntil("the script to be running", async () => (await client.jobs().tasks(job.id))[0]?.state === TaskState.RUNNING);
    await client.jobs().cancel(job.id);
    await expect(client.jobs().wait(job.id)).rejects.toBeInstanceOf(JobCanceledError);
    await waitUntil("the task to be CANCELED", async () => (await client.jobs().tasks(job.id))[0]?.state === TaskState.CANCELED);
  });

  it("answers JobService.GetJob to a plain @grpc/grpc-js client for a job that ran", async () => {
    const cluster = await client.clusters().create("grpc-js");
    await run(suiteRunner(suite, { cluster: cluster.slug, tasks: [FanOut, Leaf], concurrency: 4 }));
    const job = await client.jobs().submit("read over grpc-js", new FanOut({ count: 3 }), { cluster: cluster.slug });
    await client.jobs().wait(job.id);

    const grpcClient = new JobServiceClient(`127.0.0.1:${suite.jobs.port}`, grpc.credentials.createInsecure());
    try {
      const md = new grpc.Metadata();
      md.set("authorization", `Bearer ${suite.apiKey}`);
      const res = await new Promise<GetJobResponse>((resolve, reject) =>
        (grpcClient as unknown as {
          getJob(req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: GetJobResponse) => void): void;
        }).getJob(create(GetJobRequestSchema, { jobId: job.id }), md, (e, r) => (e ? reject(e) : resolve(r))),
      );
      expect(res.$typeName).toBe("corral.jobs.v1.GetJobResponse");
      expect(res.job).toMatchObject({
        id: job.id,
        name: "read over grpc-js",
        clusterSlug: cluster.slug,
        state: JobState.COMPLETED,
        teamId: suite.teamId,
      });
      expect(res.job!.progress).toEqual([expect.objectContaining({ label: "leaves", total: 3n, done: 3n })]);
      expect(res.job!.stats?.tasksByState).toMatchObject({ total: 4, computed: 4 });

      const missing = await new Promise<grpc.ServiceError>((resolve) =>
        (grpcClient as unknown as {
          getJob(req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null) => void): void;
        }).getJob(create(GetJobRequestSchema, { jobId: "0190b0c4-0000-7000-8000-000000000000" }), md, (e) => resolve(e!)),
      );
      expect(missing.code).toBe(grpc.status.NOT_FOUND);
    } finally {
      grpcClient.close();
    }
  });
});
