// Concurrency keys and rate limits end to end, through the SDK against the services as processes
// (Postgres and Redis real) with two broker replicas: subtasks submitted with a key read from their
// input never run more than their limit at once and keys take turns; a rate-limited fan-out never
// starts more than its limit in any window (the start times job-service records); a task held by
// its key says so in its wait reason.
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { JobState, TaskState } from "@corral/proto";
import { Task, type Client, type ExecutionContext, type Runner } from "@corral/sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { spawnService, type ServiceProcess } from "../support/processes.js";
import { startRunner, suiteClient, suiteRunner, waitUntil } from "../support/clients.js";
import { startSuite, type Suite } from "../support/suite.js";

interface Event {
  kind: "start" | "end";
  key: string;
}
const events: Event[] = [];

/** A unit of work for one customer: at most two of a customer's run at once. */
class CustomerWork extends Task<{ customer: string; i: number }> {
  static override identifier = { name: "e2e/CustomerWork", version: "v1.0" };
  static override scheduling = { concurrency: { key: (t: CustomerWork) => `customer-${t.input.customer}`, limit: 2 } };
  override async execute(): Promise<void> {
    events.push({ kind: "start", key: this.input.customer });
    for (let i = 0; i < 1 + (this.input.i % 3); i++) await new Promise((done) => setImmediate(done));
    events.push({ kind: "end", key: this.input.customer });
  }
}

/** Fans out its customers' work: a's burst first, then b's and c's. */
class Billing extends Task<{ counts: Record<string, number> }> {
  static override identifier = { name: "e2e/Billing", version: "v1.0" };
  override execute(ctx: ExecutionContext): void {
    for (const [customer, n] of Object.entries(this.input.counts)) {
      for (let i = 0; i < n; i++) ctx.submitSubtask(new CustomerWork({ customer, i }));
    }
  }
}

class Mail extends Task<{ i: number }> {
  static override identifier = { name: "e2e/Mail", version: "v1.0" };
  override execute(): void {}
}

class Mailing extends Task<{ n: number }> {
  static override identifier = { name: "e2e/Mailing", version: "v1.0" };
  override execute(ctx: ExecutionContext): void {
    for (let i = 0; i < this.input.n; i++) ctx.submitSubtask(new Mail({ i }), { rateLimit: { name: "emails", limit: 50, period: "1s" } });
  }
}

let release: () => void = () => {};
const gate = new Promise<void>((resolve) => (release = resolve));
/** Runs until the test opens the gate. */
class Hold extends Task<{ label: string }> {
  static override identifier = { name: "e2e/Hold", version: "v1.0" };
  override async execute(): Promise<void> {
    await gate;
  }
}

function peaks(list: readonly Event[]): Map<string, number> {
  const running = new Map<string, number>();
  const peak = new Map<string, number>();
  for (const e of list) {
    const n = (running.get(e.key) ?? 0) + (e.kind === "start" ? 1 : -1);
    running.set(e.key, n);
    peak.set(e.key, Math.max(peak.get(e.key) ?? 0, n));
  }
  return peak;
}

describe("concurrency keys and rate limits over separate service processes and two brokers", { timeout: 240_000 }, () => {
  let suite: Suite;
  let secondBroker: ServiceProcess;
  let client: Client;
  const runners: Runner[] = [];

  beforeAll(async () => {
    suite = await startSuite({ label: "e2e-concurrency" });
    secondBroker = await spawnService({
      name: "task-broker-2",
      entry: "services/task-broker/src/main.ts",
      env: { ...suite.env, CORRAL_BROKER_ID: "broker-2" },
    });
    client = suiteClient(suite);
  }, 120_000);
  afterEach(async () => {
    await Promise.all(runners.splice(0).map((r) => r.stop()));
  });
  afterAll(async () => {
    release();
    await secondBroker?.stop(5_000);
    await suite?.stop();
  });

  /** Runners on both broker replicas. */
  async function runnersOn(cluster: string, tasks: Array<typeof Task<never>>, each: number, concurrency: number) {
    for (const broker of [suite.broker, secondBroker]) {
      for (let i = 0; i < each; i++) {
        const runner = suiteRunner({ ...suite, broker }, { cluster, tasks: tasks as never, concurrency });
        runners.push(runner);
        await startRunner(runner);
      }
    }
  }

  it("never runs 3 tasks of a key with limit 2 over 1,000 subtasks of 3 keys, and keys take turns", async () => {
    const cluster = await client.clusters().create("customers");
    await runnersOn(cluster.slug, [Billing, CustomerWork] as never, 2, 4);
    events.length = 0;
    const job = await client.jobs().submit("billing", new Billing({ counts: { a: 600, b: 200, c: 200 } }), { cluster: cluster.slug });
    const done = await client.jobs().wait(job.id);
    expect(done.state).toBe(JobState.COMPLETED);
    expect(events.filter((e) => e.kind === "start")).toHaveLength(1_000);
    for (const [key, peak] of peaks(events)) expect(peak, key).toBeLessThanOrEqual(2);
    expect(peaks(events).get("a")).toBe(2);
    const starts = events.filter((e) => e.kind === "start");
    expect(starts.findIndex((e) => e.key === "b")).toBeLessThan(20);
    expect(starts.findIndex((e) => e.key === "c")).toBeLessThan(20);
  });

  it("never starts more than 50 rate-limited subtasks in any one-second window", async () => {
    const cluster = await client.clusters().create("mailing");
    await runnersOn(cluster.slug, [Mailing, Mail] as never, 1, 16);
    const job = await client.jobs().submit("mailing", new Mailing({ n: 130 }), { cluster: cluster.slug });
    expect((await client.jobs().wait(job.id)).state).toBe(JobState.COMPLETED);
    const [root] = await client.jobs().tasks(job.id);
    const mails = await client.jobs().tasks(job.id, { parentId: root!.id });
    expect(mails).toHaveLength(130);
    expect(mails[0]!.rateLimit).toMatchObject({ name: "emails", limit: 50 });
    const starts = mails.map((t) => timestampMs(t.startTime!)).sort((x, y) => x - y);
    for (let i = 0; i + 50 < starts.length; i++) expect(starts[i + 50]! - starts[i]!, `start ${i + 50}`).toBeGreaterThanOrEqual(1_000);
  });

  it("says a task waits for its key at its limit", async () => {
    const cluster = await client.clusters().create("holding");
    await runnersOn(cluster.slug, [Hold] as never, 1, 2);
    const job = await client.jobs().submit("hold", [new Hold({ label: "first" }), new Hold({ label: "second" })], {
      cluster: cluster.slug,
      concurrency: { key: "acme", limit: 1 },
    });
    const waiting = await waitUntil("one task running and one held by its key", async () => {
      const tasks = await client.jobs().tasks(job.id);
      const running = tasks.filter((t) => t.state === TaskState.RUNNING);
      const queued = tasks.filter((t) => t.state === TaskState.QUEUED);
      return running.length === 1 && queued.length === 1 && queued[0]!.waitReason !== "waits for a runner" ? queued[0] : undefined;
    });
    expect(waiting.waitReason).toBe("key acme at its limit 1/1");
    release();
    expect((await client.jobs().wait(job.id)).state).toBe(JobState.COMPLETED);
  });
});
