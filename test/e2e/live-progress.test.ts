// Live progress end to end (issue 24 item 4): a task that reports progress and then waits shows
// that progress in GetJob, WatchJob (the SDK's wait), `corral job list` and `corral job cancel`
// while it is still running, over the three services as processes.
import { JobState, TaskState } from "@corral/proto";
import { Task, type Client, type ExecutionContext, type Runner } from "@corral/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { startRunner, suiteClient, suiteRunner, waitUntil } from "../support/clients.js";
import { startSuite, type Suite } from "../support/suite.js";

/** Reports 3 of 10 tiles and a display, then runs until its job is canceled. */
class Halfway extends Task<{ tiles: number }> {
  static override identifier = { name: "e2e/Halfway", version: "v1.0" };
  override async execute(ctx: ExecutionContext): Promise<void> {
    const p = ctx.progress("tiles").add(this.input.tiles);
    p.done(3);
    ctx.setDisplay(`3 of ${this.input.tiles} tiles`);
    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      ctx.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    ctx.throwIfAborted();
  }
}

describe("live progress of a running task", { timeout: 120_000 }, () => {
  let suite: Suite;
  let client: Client;
  let runner: Runner;

  beforeAll(async () => {
    suite = await startSuite({ label: "e2e-live-progress" });
    client = suiteClient(suite);
  });
  afterAll(async () => {
    await runner?.stop();
    await suite?.stop();
  });

  it("shows a running task's progress and display before it ends, in GetJob, wait, job list and job cancel", async () => {
    const cluster = await client.clusters().create("progress");
    runner = suiteRunner(suite, { cluster: cluster.slug, tasks: [Halfway], progressIntervalMs: 50 });
    await startRunner(runner);
    const job = await client.jobs().submit("halfway", new Halfway({ tiles: 10 }), { cluster: cluster.slug });

    // GetJob: the progress arrives while the task still runs (it only ends when canceled).
    const running = await waitUntil("progress in GetJob", async () => {
      const j = await client.jobs().find(job.id);
      return j.progress.length > 0 && j;
    });
    expect(running.state).not.toBe(JobState.COMPLETED);
    expect(running.progress.map((p) => ({ label: p.label, done: Number(p.done), total: Number(p.total) }))).toEqual([
      { label: "tiles", done: 3, total: 10 },
    ]);
    const [task] = await client.jobs().tasks(job.id);
    expect(task!.state).toBe(TaskState.RUNNING);
    expect(task!.display).toBe("3 of 10 tiles");

    // The SDK's wait (WatchJob) reports it too, before the job ends.
    const seen = new AbortController();
    let watched: string | undefined;
    await client
      .jobs()
      .wait(job.id, {
        signal: seen.signal,
        onProgress: ({ job: j }) => {
          if (j.progress.length > 0) {
            watched = `${j.progress[0]!.label} ${String(j.progress[0]!.done)}/${String(j.progress[0]!.total)}`;
            seen.abort();
          }
        },
      })
      .catch(() => undefined);
    expect(watched).toBe("tiles 3/10");

    const env = { CORRAL_URL: suite.jobs.url, CORRAL_API_KEY: suite.apiKey };
    const list = await runCli(["job", "list", "--cluster", cluster.slug], { env });
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`${job.id}.*tiles 3/10`));

    const canceled = await runCli(["job", "cancel", job.id], { env });
    expect(canceled.code, canceled.stderr).toBe(0);
    expect(canceled.stdout).toMatch(/progress:\s+tiles 3\/10/);
  });
});
