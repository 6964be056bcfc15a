// A result job-service cannot store (a NUL in a string, a request over its size limit) fails only
// its own task with a clear error; every other team's results keep flowing, and the broker says
// NOT_SERVING while results cannot be delivered at all.
import { create, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { JobService, JobState, TaskBrokerService, TaskState, WorkRequestSchema, type WorkRequest, type WorkResponse } from "@corral/proto";
import { rawTask } from "@corral/sdk";
import { AsyncQueue } from "@corral/wire";
import { createServiceClient } from "@corral/server-kit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnService, type ServiceProcess } from "../support/processes.js";
import { startSuite, type Suite } from "../support/suite.js";

const MAX_MESSAGE = 64 * 1024;
// The longest broker id there is: a ReportResults request is larger than the Work message it carries.
const BROKER_ID = `poison-broker-${"x".repeat(100)}`;

type Message = NonNullable<MessageInitShape<typeof WorkRequestSchema>["message"]>;
type Kind = NonNullable<WorkResponse["message"]["case"]>;

/** A runner speaking the Work stream by hand, so it can send what the SDK would refuse. */
function openRunner(url: string, key: string, runnerId: string, name: string) {
  const broker = createServiceClient(TaskBrokerService, { baseUrl: url, apiKey: key, timeoutMs: 600_000 });
  const input = new AsyncQueue<WorkRequest>();
  const abort = new AbortController();
  const received: WorkResponse[] = [];
  const waiters = new Set<() => void>();
  input.push(create(WorkRequestSchema, { message: { case: "hello", value: { runnerId, identifiers: [{ name, version: "v1.0" }], slots: 10 } } }));
  input.push(create(WorkRequestSchema, { message: { case: "credit", value: { n: 10 } } }));
  const done = (async () => {
    try {
      for await (const m of broker.work(input, { signal: abort.signal })) {
        received.push(m);
        for (const w of [...waiters]) w();
      }
      return undefined;
    } catch (err) {
      return ConnectError.from(err);
    } finally {
      for (const w of [...waiters]) w();
    }
  })();
  let ended: ConnectError | undefined | null = null;
  void done.then((e) => (ended = e));
  return {
    done,
    /** The next message of `kind`, or the error the stream ended with. */
    async next<K extends Kind>(kind: K): Promise<Extract<WorkResponse["message"], { case: K }>["value"] | ConnectError> {
      for (;;) {
        const i = received.findIndex((m) => m.message.case === kind);
        if (i >= 0) {
          const m = received.splice(i, 1)[0]!;
          return m.message.value as never;
        }
        if (ended !== null) return ended ?? new ConnectError("stream ended", Code.Unknown);
        await new Promise<void>((resolve) => waiters.add(resolve));
        waiters.clear();
      }
    },
    send(message: Message) {
      input.push(create(WorkRequestSchema, { message }));
    },
    close() {
      abort.abort();
      input.end();
    },
  };
}

type Runner = ReturnType<typeof openRunner>;

async function assigned(r: Runner) {
  const a = await r.next("assign");
  if (a instanceof ConnectError) throw a;
  const lease = a.lease!;
  return { taskId: lease.taskId, attempt: lease.attempt, token: lease.token };
}

describe("poison results", () => {
  let suite: Suite;
  let teamB: { teamId: string; key: string };
  const runners: Runner[] = [];
  const jobsOf = (key: string) => createServiceClient(JobService, { baseUrl: suite.jobs.url, apiKey: key, timeoutMs: 10_000 });
  const runner = (key: string, id: string, name: string) => {
    const r = openRunner(suite.broker.url, key, id, name);
    runners.push(r);
    return r;
  };

  beforeAll(async () => {
    suite = await startSuite({
      label: "poison",
      env: { CORRAL_RESULT_STALL_TIMEOUT: "1s", CORRAL_MAX_MESSAGE_BYTES: String(MAX_MESSAGE), CORRAL_BROKER_ID: BROKER_ID },
    });
    teamB = await suite.newTeam("poison-b");
  }, 120_000);
  afterAll(async () => {
    for (const r of runners) r.close();
    await suite?.stop();
  });

  /** Team B submits `count` jobs and its runner completes each; resolves when all are COMPLETED. */
  async function teamBCompletes(count: number, name: string) {
    const jobs = jobsOf(teamB.key);
    const ids = [];
    for (let i = 0; i < count; i++) ids.push((await jobs.submitJob({ name: `b-${i}`, tasks: [rawTask({ name, version: "v1.0" }, { i })] })).job!.id);
    const b = runner(teamB.key, `b-${name}`, name);
    for (let i = 0; i < count; i++) {
      const lease = await assigned(b);
      b.send({ case: "completed", value: { lease, display: `b ${i}` } });
    }
    for (let i = 0; i < count; i++) {
      const ack = await b.next("ack");
      if (ack instanceof ConnectError) throw ack;
      expect(ack.accepted).toBe(true);
    }
    for (const id of ids) expect((await jobs.getJob({ jobId: id })).job?.state).toBe(JobState.COMPLETED);
  }

  async function taskOf(key: string, jobId: string) {
    return (await jobsOf(key).listTasks({ jobId })).tasks[0]!;
  }

  it("a NUL in team A's result fails only team A's task, with a clear error; team B's jobs keep completing", async () => {
    const jobA = (await jobsOf(suite.apiKey).submitJob({ name: "a-poison", tasks: [rawTask({ name: "poison/Nul", version: "v1.0" }, {})] })).job!;
    const a = runner(suite.apiKey, "a-nul", "poison/Nul");
    const lease = await assigned(a);
    a.send({ case: "completed", value: { lease, display: "bad\0display", progress: [{ label: "rows\0", total: 1n, done: 1n }] } });
    await teamBCompletes(5, "poison/B1");
    const ack = await a.next("ack");
    if (ack instanceof ConnectError) {
      // Refused at the stream edge (generic NUL rejection): it never reached the result path.
      expect(ack.code).toBe(Code.InvalidArgument);
      return;
    }
    expect(ack.accepted).toBe(false);
    expect(ack.reason).toMatch(/^the task's result could not be stored: .*NUL/);
    const t = await taskOf(suite.apiKey, jobA.id);
    expect(t.state).toBe(TaskState.FAILED);
    expect(t.error).toMatch(/^the task's result could not be stored: completed\.display contains a NUL character/);
  });

  it("a result job-service refuses although it passed the stream edge (over its size limit) fails only its task", async () => {
    const jobA = (await jobsOf(suite.apiKey).submitJob({ name: "a-big", tasks: [rawTask({ name: "poison/Big", version: "v1.0" }, {})] })).job!;
    const a = runner(suite.apiKey, "a-big", "poison/Big");
    const lease = await assigned(a);
    // The Work message just fits the broker's limit; the ReportResults request carrying it does not fit job-service's.
    const completed = (n: number): Message => ({
      case: "completed",
      value: { lease, subtasks: [{ identifier: { name: "poison/Child", version: "v1.0" }, input: new Uint8Array(n) }] },
    });
    const size = (n: number) => toBinary(WorkRequestSchema, create(WorkRequestSchema, { message: completed(n) })).length;
    let n = MAX_MESSAGE - 200;
    while (size(n + 1) <= MAX_MESSAGE - 8) n++;
    a.send(completed(n));
    await teamBCompletes(5, "poison/B2");
    const ack = await a.next("ack");
    if (ack instanceof ConnectError) throw ack;
    expect(ack.accepted).toBe(false);
    expect(ack.reason).toMatch(/^the task's result could not be stored: job-service refused it \(ResourceExhausted: /);
    const t = await taskOf(suite.apiKey, jobA.id);
    expect(t.state).toBe(TaskState.FAILED);
    expect(t.error).toBe(ack.reason);
  });

  it("says NOT_SERVING while results cannot reach job-service for longer than the stall timeout, and SERVING once they flow", async () => {
    const jobs = jobsOf(suite.apiKey);
    const job = (await jobs.submitJob({ name: "a-stall", tasks: [rawTask({ name: "poison/Stall", version: "v1.0" }, {})] })).job!;
    const a = runner(suite.apiKey, "a-stall", "poison/Stall");
    const lease = await assigned(a);
    const healthz = async () => (await fetch(`${suite.broker.url}/healthz`)).status;
    const until = async (status: number) => {
      while ((await healthz()) !== status) await new Promise((r) => setTimeout(r, 50));
    };
    expect(await healthz()).toBe(200);
    await suite.jobs.stop(5_000);
    let jobsAgain: ServiceProcess | undefined;
    try {
      a.send({ case: "completed", value: { lease, display: "after the outage" } });
      await until(503);
      jobsAgain = await spawnService({ name: "job-service", entry: "services/job-service/src/main.ts", env: suite.env, port: suite.jobs.port });
      await until(200);
      const ack = await a.next("ack");
      if (ack instanceof ConnectError) throw ack;
      expect(ack.accepted).toBe(true);
      expect((await taskOf(suite.apiKey, job.id)).state).toBe(TaskState.COMPUTED);
    } finally {
      await jobsAgain?.stop(5_000);
    }
  });
});
