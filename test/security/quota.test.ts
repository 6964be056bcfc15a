// The queued-task quota under concurrency, with real services: admission is exact across parallel
// submissions, subtasks count, tasks that end (or a refused submission) give their room back, a
// canceled job's queued entries leave Redis, and the subtask limit GetRuntimeConfig advertises is
// the one enforced.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  JobService,
  JobState,
  ResultStatus,
  RuntimeService,
  TaskLedgerService,
  TaskResultSchema,
  TaskState,
} from "@corral/proto";
import { ExecutionContext, rawTask, Task, type Runner } from "@corral/sdk";
import { createServiceClient } from "@corral/server-kit";
import { TEST_REDIS_URL } from "@corral/server-kit/testing";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRunner, suiteClient, suiteRunner, waitUntil } from "../support/clients.js";
import { startSuite, type Suite } from "../support/suite.js";

const QUOTA = 2_000;

class Fan extends Task<{ count: number }> {
  static override identifier = { name: "quota/Fan", version: "v1.0" };
  override execute(ctx: ExecutionContext): void {
    ctx.submitSubtasks(Array.from({ length: this.input.count }, () => new Leaf({})));
  }
}

class Leaf extends Task<Record<string, never>> {
  static override identifier = { name: "quota/Leaf", version: "v1.0" };
  override execute(): void {}
}

/** Nobody runs it: it stays queued. */
const never = () => rawTask({ name: "quota/Never", version: "v1.0" }, {});

function settledCodes(settled: PromiseSettledResult<unknown>[]): { ok: number; refused: ConnectError[] } {
  const refused = settled.filter((s) => s.status === "rejected").map((s) => ConnectError.from((s as PromiseRejectedResult).reason));
  return { ok: settled.length - refused.length, refused };
}

describe("queued-task quota", () => {
  let suite: Suite;
  let redis: Redis;
  const runners: Runner[] = [];
  beforeAll(async () => {
    suite = await startSuite({
      label: "quota",
      env: { CORRAL_QUOTA_QUEUED_TASKS: String(QUOTA), CORRAL_QUOTA_SUBMISSIONS_PER_SECOND: "100000" },
    });
    redis = new Redis(TEST_REDIS_URL, { keyPrefix: suite.redisPrefix });
  });
  afterAll(async () => {
    await Promise.all(runners.map((r) => r.stop()));
    redis?.disconnect();
    await suite?.stop();
  });

  const jobsOf = (key: string) => createServiceClient(JobService, { baseUrl: suite.jobs.url, apiKey: key, timeoutMs: 30_000 });

  it("admits exactly what fits of 30 parallel submissions of 500 tasks, and gives the room of a canceled job back", async () => {
    const team = await suite.newTeam("quota-parallel");
    const jobs = jobsOf(team.key);
    const settled = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) => jobs.submitJob({ name: `p${i}`, tasks: Array.from({ length: 500 }, never) })),
    );
    const { ok, refused } = settledCodes(settled);
    expect(ok * 500).toBe(QUOTA);
    for (const e of refused) {
      expect(e.code, e.message).toBe(Code.ResourceExhausted);
      expect(e.rawMessage).toContain(`quota of ${QUOTA} open tasks (queued or running`);
      expect(Number(e.metadata.get("retry-after-ms"))).toBeGreaterThan(0);
    }
    // Full: one more task is refused, until a job's tasks leave the queue.
    expect((await jobs.submitJob({ name: "one more", tasks: [never()] }).catch((e: unknown) => ConnectError.from(e)))).toMatchObject({
      code: Code.ResourceExhausted,
    });
    const first = settled.find((s): s is PromiseFulfilledResult<Awaited<ReturnType<typeof jobs.submitJob>>> => s.status === "fulfilled")!;
    await jobs.cancelJob({ jobId: first.value.job!.id });
    await jobs.submitJob({ name: "after cancel", tasks: Array.from({ length: 500 }, never) });
  });

  it("counts subtasks: a result whose subtasks do not fit fails its task naming the limit; finished tasks free their room", async () => {
    const team = await suite.newTeam("quota-subtasks");
    const client = suiteClient(suite, team.key);
    const jobs = jobsOf(team.key);
    runners.push((await startRunner(suiteRunner(suite, { tasks: [Fan, Leaf], concurrency: 8 }, team.key))).runner);
    await jobs.submitJob({ name: "blocker", tasks: Array.from({ length: 1_000 }, never) });

    const tooMany = await client.jobs().submit("too many", new Fan({ count: 1_500 }));
    await client.jobs().wait(tooMany.id).catch(() => undefined); // it fails: JobFailedError
    expect((await jobs.getJob({ jobId: tooMany.id })).job!.state).toBe(JobState.FAILED);
    const [root] = (await jobs.listTasks({ jobId: tooMany.id })).tasks;
    expect(root!.state).toBe(TaskState.FAILED);
    expect(root!.error).toContain(`quota of ${QUOTA} open tasks`);
    expect(root!.subtaskCount).toBe(0);

    const fits = await client.jobs().submit("fits", new Fan({ count: 900 }));
    expect((await client.jobs().wait(fits.id)).state).toBe(JobState.COMPLETED);
    // 1,000 still queued: the 901 finished tasks gave their room back, exactly 1,000 more fit.
    await jobs.submitJob({ name: "refill", tasks: Array.from({ length: 1_000 }, never) });
    const err = await jobs.submitJob({ name: "over", tasks: [never()] }).catch((e: unknown) => ConnectError.from(e));
    expect(err).toMatchObject({ code: Code.ResourceExhausted });
  });

  it("gives back nothing it did not take: a refused submission leaves the count as it was", async () => {
    const team = await suite.newTeam("quota-refused");
    const jobs = jobsOf(team.key);
    await jobs.submitJob({ name: "half", tasks: Array.from({ length: 1_000 }, never) });
    for (let i = 0; i < 3; i++) {
      const err = await jobs.submitJob({ name: `big${i}`, tasks: Array.from({ length: 1_001 }, never) }).catch((e: unknown) => ConnectError.from(e));
      expect(err).toMatchObject({ code: Code.ResourceExhausted });
    }
    await jobs.submitJob({ name: "other half", tasks: Array.from({ length: 1_000 }, never) });
  });

  it("deletes a canceled job's queued entries from the Redis streams", async () => {
    const team = await suite.newTeam("quota-cancel");
    const jobs = jobsOf(team.key);
    const streamLengths = async () => {
      const keys = await redis.keys(`${suite.redisPrefix}corral:{*}:q:quota/Never:v1.0`);
      let n = 0;
      for (const k of keys) n += await redis.xlen(k.slice(suite.redisPrefix.length));
      return n;
    };
    const before = await streamLengths();
    const { job } = await jobs.submitJob({ name: "to cancel", tasks: Array.from({ length: 300 }, never) });
    await waitUntil("the job's tasks in the streams", async () => (await streamLengths()) >= before + 300);
    await jobs.cancelJob({ jobId: job!.id });
    // The other tests' queued entries of the same identifier stay; this job's are gone at once.
    expect(await streamLengths()).toBe(before);
  });

  it("refuses a result with more subtasks than GetRuntimeConfig advertises, naming the limit", async () => {
    const runtime = createServiceClient(RuntimeService, { baseUrl: suite.registry.url, apiKey: suite.apiKey, timeoutMs: 10_000 });
    const limits = (await runtime.getRuntimeConfig({})).limits!;
    const ledger = createServiceClient(TaskLedgerService, { baseUrl: suite.jobs.url, apiKey: suite.serviceKey, timeoutMs: 30_000 });
    const over = (n: number) =>
      create(TaskResultSchema, {
        taskId: "no-such-task",
        attempt: 1,
        outcome: { case: "completed", value: { subtasks: Array.from({ length: n }, () => rawTask({ name: "quota/Leaf", version: "v1.0" }, {})) } },
      });
    const err = await ledger
      .reportResults({ brokerId: "quota-test", results: [over(limits.maxSubtasksPerResult + 1)] })
      .catch((e: unknown) => ConnectError.from(e));
    expect(err).toMatchObject({ code: Code.InvalidArgument });
    expect((err as ConnectError).rawMessage).toContain("subtasks");
    expect((err as ConnectError).rawMessage).toContain(String(limits.maxSubtasksPerResult));
    // At the limit the result passes validation (and answers for the unknown task).
    const atLimit = await ledger.reportResults({ brokerId: "quota-test", results: [over(limits.maxSubtasksPerResult)] });
    expect(atLimit.outcomes[0]!.status).toBe(ResultStatus.NOT_FOUND);

    // The same for SubmitJob's tasks.
    const jobs = jobsOf(suite.apiKey);
    const tooLarge = await jobs
      .submitJob({ name: "too large", tasks: Array.from({ length: limits.maxTasksPerSubmission + 1 }, never) })
      .catch((e: unknown) => ConnectError.from(e));
    expect(tooLarge).toMatchObject({ code: Code.InvalidArgument });
    expect((tooLarge as ConnectError).rawMessage).toContain(String(limits.maxTasksPerSubmission));
  });
});
