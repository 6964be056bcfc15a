// Scheduling controls end to end, through the SDK against the three services as processes: an
// execution timeout aborting the task's signal and failing the attempt as TIMED_OUT (retried after
// its backoff), a job on a cluster with no runner ending at its schedule-to-start timeout, and a
// delayed task that never starts before its time.
import { JobState, TaskErrorKind, TaskState } from "@corral/proto";
import { JobFailedError, Task, type Client, type ExecutionContext, type Runner } from "@corral/sdk";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startRunner, suiteClient, suiteRunner } from "../support/clients.js";
import { startSuite, type Suite } from "../support/suite.js";

/** Runs until its signal aborts, then stops with the signal's reason. */
class Patient extends Task<{ label: string }> {
  static override identifier = { name: "e2e/Patient", version: "v1.0" };
  static override scheduling = { timeout: "300ms", maxRetries: 1, retry: { backoff: { initial: "200ms" } } };
  override async execute(ctx: ExecutionContext): Promise<void> {
    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      ctx.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    throw ctx.signal.reason;
  }
}

class Quick extends Task<{ label: string }> {
  static override identifier = { name: "e2e/Quick", version: "v1.0" };
  override execute(): void {}
}

describe("scheduling controls over separate service processes", { timeout: 120_000 }, () => {
  let suite: Suite;
  let client: Client;
  const runners: Runner[] = [];

  beforeAll(async () => {
    suite = await startSuite({ label: "e2e-scheduling" });
    client = suiteClient(suite);
  });
  afterEach(async () => {
    await Promise.all(runners.splice(0).map((r) => r.stop()));
  });
  afterAll(async () => {
    await suite?.stop();
  });

  it("aborts a task at its execution timeout, retries it after its backoff, then fails the job as TIMED_OUT", async () => {
    const cluster = await client.clusters().create("timeouts");
    const runner = suiteRunner(suite, { cluster: cluster.slug, tasks: [Patient], concurrency: 1 });
    runners.push(runner);
    await startRunner(runner);
    const job = await client.jobs().submit("patient", new Patient({ label: "p" }), { cluster: cluster.slug });
    await expect(client.jobs().wait(job.id)).rejects.toBeInstanceOf(JobFailedError);
    const [t] = await client.jobs().tasks(job.id);
    expect(t!.state).toBe(TaskState.FAILED);
    expect(t!.errorKind).toBe(TaskErrorKind.TIMED_OUT);
    expect(t!.retryCount).toBe(1);
    expect(t!.attempt).toBe(2);
    expect(t!.error).toMatch(/execution timeout/);
  });

  it("ends a job on a cluster with no runner once its schedule-to-start timeout passes", async () => {
    const cluster = await client.clusters().create("nobody home");
    const job = await client.jobs().submit("lonely", new Quick({ label: "q" }), { cluster: cluster.slug, scheduleToStartTimeout: "1s" });
    await expect(client.jobs().wait(job.id)).rejects.toBeInstanceOf(JobFailedError);
    const [t] = await client.jobs().tasks(job.id);
    expect(t!.state).toBe(TaskState.FAILED);
    expect(t!.errorKind).toBe(TaskErrorKind.SCHEDULE_TO_START_TIMED_OUT);
  });

  it("never starts a delayed task before its time", async () => {
    const cluster = await client.clusters().create("delays");
    const runner = suiteRunner(suite, { cluster: cluster.slug, tasks: [Quick], concurrency: 1 });
    runners.push(runner);
    await startRunner(runner);
    const notBefore = new Date(Date.now() + 1_500);
    const job = await client.jobs().submit("later", new Quick({ label: "l" }), { cluster: cluster.slug, notBefore });
    const [queued] = await client.jobs().tasks(job.id);
    expect(queued!.waitReason).toBe(`delayed until ${notBefore.toISOString()}`);
    const done = await client.jobs().wait(job.id);
    expect(done.state).toBe(JobState.COMPLETED);
    const [t] = await client.jobs().tasks(job.id);
    expect(timestampDate(t!.startTime!).getTime()).toBeGreaterThanOrEqual(notBefore.getTime());
  });
});
