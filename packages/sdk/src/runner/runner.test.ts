// The runner against a small in-test broker: a real TaskBrokerService.Work over HTTP/2 (gRPC),
// scripted step by step from the test.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import http2 from "node:http2";
import net, { type AddressInfo } from "node:net";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createRouterTransport, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  TaskBrokerService,
  TaskErrorKind,
  WorkResponseSchema,
  type WorkRequest,
  type WorkResponse,
} from "@corral/proto";
import { AsyncQueue } from "@corral/wire";
import { pino } from "pino";
import { Runner } from "./runner.js";
import { Client } from "../client.js";
import { Echo } from "../tasks/echo.js";
import { Task } from "../task.js";
import type { ExecutionContext } from "../execution-context.js";
import { createSdkLogger } from "../logger.js";
import { ClusterNotFoundError, UnavailableError } from "../errors.js";
import { createTransport } from "../transport.js";

type Init = MessageInitShape<typeof WorkResponseSchema>;
type Req<C extends NonNullable<WorkRequest["message"]["case"]>> = Extract<WorkRequest["message"], { case: C }>["value"];

class Session {
  readonly received: WorkRequest[] = [];
  readonly outbox = new AsyncQueue<WorkResponse>();
  readonly authorization: string | null;
  #cursor = new Map<string, number>();
  #waiters: Array<() => void> = [];
  ended = false;

  constructor(authorization: string | null) {
    this.authorization = authorization;
  }

  push(m: WorkRequest): void {
    this.received.push(m);
    this.#notify();
  }

  end(): void {
    this.ended = true;
    this.#notify();
  }

  #notify(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  send(message: Init["message"]): void {
    this.outbox.push(create(WorkResponseSchema, { message }));
  }

  /** The next message of this kind the test has not taken yet. */
  async take<C extends NonNullable<WorkRequest["message"]["case"]>>(kind: C): Promise<Req<C>> {
    for (;;) {
      const from = this.#cursor.get(kind) ?? 0;
      const i = this.received.findIndex((m, idx) => idx >= from && m.message.case === kind);
      if (i >= 0) {
        this.#cursor.set(kind, i + 1);
        return this.received[i]!.message.value as Req<C>;
      }
      if (this.ended) throw new Error(`stream ended before a ${kind} arrived`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  count(kind: string): number {
    return this.received.filter((m) => m.message.case === kind).length;
  }

  /** Resolves once the runner has closed its side. */
  async closed(): Promise<void> {
    while (!this.ended) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }
}

class TestBroker {
  readonly sessions: Session[] = [];
  #waiters: Array<() => void> = [];
  /** When set, the next Work call fails with this code. */
  refuseWith: Code | undefined;

  routes = (router: ConnectRouter) => {
    router.service(TaskBrokerService, {
      work: (requests, ctx) => {
        if (this.refuseWith !== undefined) throw new ConnectError('cluster "nope" not found', this.refuseWith);
        const session = new Session(ctx.requestHeader.get("authorization"));
        this.sessions.push(session);
        for (const w of this.#waiters.splice(0)) w();
        void (async () => {
          try {
            for await (const m of requests) session.push(m);
          } catch (err) {
            // The runner went away.
            if (process.env.DEBUG_BROKER) console.error("request stream error", err);
          }
          session.end();
          session.outbox.end();
        })();
        return session.outbox;
      },
    });
  };

  async session(n: number): Promise<Session> {
    while (this.sessions.length < n) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    return this.sessions[n - 1]!;
  }
}

function welcome(session: Session, resumed: Array<{ taskId: string; attempt: number }> = [], heartbeatMs = 50) {
  session.send({
    case: "welcome",
    value: {
      sessionId: `s${Math.random()}`,
      leaseDuration: durationFromMs(30_000),
      heartbeatInterval: durationFromMs(heartbeatMs),
      clusterSlug: "testing",
      resumed: resumed.map((r) => ({ ...r, token: `tok-${r.taskId}` })),
    },
  });
}

function assignEcho(session: Session, taskId: string, input: object, name = "corral/Echo") {
  session.send({
    case: "assign",
    value: {
      lease: { taskId, attempt: 1, token: `tok-${taskId}` },
      task: {
        taskId,
        jobId: "job-1",
        jobName: "test job",
        teamId: "team",
        clusterId: "c1",
        clusterSlug: "testing",
        identifier: { name, version: "v1.0" },
        attempt: 1,
        input: new TextEncoder().encode(JSON.stringify(input)),
      },
    },
  });
}

class FanOut extends Task<{ n: number }> {
  static override identifier = { name: "test/FanOut", version: "v1.0" };
  override execute(ctx: ExecutionContext) {
    const first = ctx.submitSubtask(new Echo({ message: "first" }));
    ctx.submitSubtasks(
      Array.from({ length: this.input.n }, (_, i) => new Echo({ message: `m${i}` })),
      { dependsOn: [first], cluster: "other-cluster" },
    );
    ctx.progress("fan").add(this.input.n);
  }
}

let server: http2.Http2Server;
let broker: TestBroker;
let url: string;
const runners: Runner[] = [];
const openSessions = new Set<http2.ServerHttp2Session>();

beforeAll(async () => {
  broker = new TestBroker();
  server = http2.createServer(connectNodeAdapter({ routes: (r) => broker.routes(r) }));
  server.on("session", (session) => {
    openSessions.add(session);
    session.on("close", () => openSessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  await Promise.all(runners.splice(0).map((r) => r.stop()));
  broker.sessions.length = 0;
  broker.refuseWith = undefined;
});

afterAll(async () => {
  for (const s of openSessions) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function startRunner(concurrency = 2, extra: Partial<ConstructorParameters<typeof Runner>[0]> = {}) {
  const runner = new Runner({
    url,
    apiKey: "corral_test_secret",
    cluster: "testing",
    tasks: [Echo, FanOut],
    concurrency,
    logger: createSdkLogger("runner-test", "silent"),
    reconnect: { baseDelayMs: 5, maxDelayMs: 20 },
    drainGraceMs: 2000,
    ackTimeoutMs: 500,
    ...extra,
  });
  runners.push(runner);
  const done = runner.runForever({ handleSignals: false });
  return { runner, done };
}

describe("Runner over a Work stream", { timeout: 30_000 }, () => {
  it("says Hello, runs assignments, reports results, credits freed slots and heartbeats", async () => {
    const { runner } = startRunner(2);
    const s = await broker.session(1);
    const hello = await s.take("hello");
    expect(s.authorization).toBe("Bearer corral_test_secret");
    expect(hello.runnerId).toBe(runner.id);
    expect(hello.clusterSlug).toBe("testing");
    expect(hello.slots).toBe(2);
    expect(hello.identifiers.map((i) => `${i.name}@${i.version}`).sort()).toEqual(["corral/Echo@v1.0", "test/FanOut@v1.0"]);
    expect(hello.hardware?.cpuCores).toBeGreaterThan(0);
    expect(hello.resumeLeases).toEqual([]);
    welcome(s);

    assignEcho(s, "t1", { message: "hello" });
    assignEcho(s, "t2", { message: "x", fail: "nope" });
    const completed = await s.take("completed");
    expect(completed.lease).toMatchObject({ taskId: "t1", attempt: 1, token: "tok-t1" });
    expect(completed.display).toBe("hello");
    const failed = await s.take("failed");
    expect(failed.lease?.taskId).toBe("t2");
    expect(failed.countsAsRetry).toBe(true);
    expect(failed.unrecoverable).toBe(false);
    expect(failed.error).toContain("nope");
    // Each finished task frees a slot; slots freed in the same turn of the event loop are
    // credited by one message.
    let credited = (await s.take("credit")).n;
    if (credited < 2) credited += (await s.take("credit")).n;
    expect(credited).toBe(2);
    await s.take("heartbeat");
    expect(runner.lifecycle).toBe("running");

    s.send({ case: "ack", value: { lease: completed.lease, accepted: true } });
    s.send({ case: "ack", value: { lease: failed.lease, accepted: true } });
    await expect.poll(() => runner.state.heldCount, { timeout: 10_000 }).toBe(0);
  });

  it("reports subtasks with sibling indices and progress, and unknown identifiers as runner faults", async () => {
    startRunner(1);
    const s = await broker.session(1);
    await s.take("hello");
    welcome(s);
    s.send({
      case: "assign",
      value: {
        lease: { taskId: "f1", attempt: 1, token: "tok" },
        task: {
          taskId: "f1",
          jobId: "j",
          teamId: "t",
          clusterId: "c",
          identifier: { name: "test/FanOut", version: "v1.0" },
          attempt: 1,
          input: new TextEncoder().encode('{"n":3}'),
        },
      },
    });
    const completed = await s.take("completed");
    expect(completed.subtasks.map((t) => t.dependsOn)).toEqual([[], [0], [0], [0]]);
    expect(completed.subtasks.map((t) => t.clusterSlug)).toEqual(["", "other-cluster", "other-cluster", "other-cluster"]);
    expect(completed.progress.map((p) => [p.label, p.total, p.done])).toEqual([["fan", 3n, 0n]]);

    assignEcho(s, "u1", {}, "not/Registered");
    const failed = await s.take("failed");
    expect(failed.lease?.taskId).toBe("u1");
    expect(failed.countsAsRetry).toBe(false);
  });

  it("changes its task set live with setTasks: Reregister on the open stream, resolved by Reregistered, and the next Hello names the new set", async () => {
    const { runner } = startRunner(1);
    const s = await broker.session(1);
    await s.take("hello");
    welcome(s);
    await expect.poll(() => runner.lifecycle).toBe("running");

    let settled = false;
    const changed = runner.setTasks([FanOut]).then(() => (settled = true));
    const reregister = await s.take("reregister");
    expect(reregister.revision).toBe(1);
    expect(reregister.identifiers.map((i) => `${i.name}@${i.version}`)).toEqual(["test/FanOut@v1.0"]);
    expect(settled).toBe(false);
    s.send({ case: "reregistered", value: { revision: 1 } });
    await changed;
    expect(runner.identifiers.map((i) => i.name)).toEqual(["test/FanOut"]);

    // An Echo task is no longer served: reported as the runner's fault, not run.
    assignEcho(s, "e-after", { message: "x" });
    const failed = await s.take("failed");
    expect(failed.lease?.taskId).toBe("e-after");
    expect(failed.countsAsRetry).toBe(false);

    // A reconnect's Hello carries the current set.
    s.send({ case: "drain", value: { reason: "test" } });
    const s2 = await broker.session(2);
    const hello = await s2.take("hello");
    expect(hello.identifiers.map((i) => i.name)).toEqual(["test/FanOut"]);
  });

  it("aborts a task's signal on Cancel", async () => {
    const { runner } = startRunner(1);
    const s = await broker.session(1);
    await s.take("hello");
    welcome(s);
    assignEcho(s, "long", { message: "never", delayMs: 60_000 });
    await expect.poll(() => runner.state.executingCount, { timeout: 10_000 }).toBe(1);
    s.send({ case: "cancel", value: { lease: { taskId: "long", attempt: 1, token: "tok-long" }, reason: "job canceled" } });
    const failed = await s.take("failed");
    expect(failed.lease?.taskId).toBe("long");
    expect(failed.error).toMatch(/job canceled|abort/i);
  });

  it("aborts a task's signal at its execution timeout and reports the attempt TIMED_OUT", async () => {
    const { runner } = startRunner(1);
    const s = await broker.session(1);
    await s.take("hello");
    welcome(s);
    s.send({
      case: "assign",
      value: {
        lease: { taskId: "slow", attempt: 1, token: "tok-slow" },
        task: {
          taskId: "slow",
          jobId: "job-1",
          clusterId: "c1",
          identifier: { name: "corral/Echo", version: "v1.0" },
          attempt: 1,
          input: new TextEncoder().encode(JSON.stringify({ message: "never", delayMs: 60_000 })),
          executionTimeout: durationFromMs(100),
        },
      },
    });
    const failed = await s.take("failed");
    expect(failed.lease?.taskId).toBe("slow");
    expect(failed.kind).toBe(TaskErrorKind.TIMED_OUT);
    expect(failed.countsAsRetry).toBe(true);
    expect(failed.error).toMatch(/execution timeout/);
    expect(runner.state.executingCount).toBe(0);
  });

  it("reconnects after the broker ends the stream, resuming running and unacknowledged leases", async () => {
    const { runner } = startRunner(2);
    const s1 = await broker.session(1);
    await s1.take("hello");
    welcome(s1);
    assignEcho(s1, "done-unacked", { message: "a" });
    assignEcho(s1, "still-running", { message: "b", delayMs: 300 });
    await s1.take("completed");
    // Drain: the broker is stopping. The runner should come back on a new stream.
    s1.send({ case: "drain", value: { reason: "broker restart" } });
    s1.outbox.end();

    const s2 = await broker.session(2);
    const hello = await s2.take("hello");
    expect(hello.runnerId).toBe(runner.id);
    expect(hello.resumeLeases.map((l) => l.taskId).sort()).toEqual(["done-unacked", "still-running"]);
    welcome(s2, [
      { taskId: "done-unacked", attempt: 1 },
      { taskId: "still-running", attempt: 1 },
    ]);
    // The unacknowledged result is sent again on the new stream, then the running one's.
    const resent = await s2.take("completed");
    expect(resent.lease?.taskId).toBe("done-unacked");
    const later = await s2.take("completed");
    expect(later.lease?.taskId).toBe("still-running");
    expect(later.display).toBe("b");
  });

  it("drops a lease the new broker did not resume and aborts its task", async () => {
    const { runner } = startRunner(1);
    const s1 = await broker.session(1);
    await s1.take("hello");
    welcome(s1);
    assignEcho(s1, "lost", { message: "x", delayMs: 60_000 });
    await expect.poll(() => runner.state.executingCount, { timeout: 10_000 }).toBe(1);
    s1.outbox.end();
    const s2 = await broker.session(2);
    expect((await s2.take("hello")).resumeLeases.map((l) => l.taskId)).toEqual(["lost"]);
    welcome(s2, []);
    await expect.poll(() => runner.state.executingCount, { timeout: 10_000 }).toBe(0);
    expect(s2.count("failed") + s2.count("completed")).toBe(0);
  });

  it("drains on stop(): Draining, running tasks finish and are reported, then the stream closes", async () => {
    const { runner, done } = startRunner(1, { drainGraceMs: 5000 });
    const s = await broker.session(1);
    await s.take("hello");
    welcome(s);
    assignEcho(s, "finishing", { message: "bye", delayMs: 200 });
    await expect.poll(() => runner.state.executingCount, { timeout: 10_000 }).toBe(1);
    const stopped = runner.stop();
    await s.take("draining");
    expect(runner.lifecycle).toBe("draining");
    const completed = await s.take("completed");
    expect(completed.lease?.taskId).toBe("finishing");
    s.send({ case: "ack", value: { lease: completed.lease, accepted: true } });
    await stopped;
    await done;
    expect(runner.lifecycle).toBe("stopped");
    await s.closed();
    expect(s.count("credit")).toBe(0);
  });

  it("reports what still runs after the grace period as the runner's fault", async () => {
    const { runner } = startRunner(1, { drainGraceMs: 100 });
    const s = await broker.session(1);
    await s.take("hello");
    welcome(s);
    assignEcho(s, "stuck", { message: "x", delayMs: 60_000 });
    await expect.poll(() => runner.state.executingCount, { timeout: 10_000 }).toBe(1);
    const stopped = runner.stop();
    const failed = await s.take("failed");
    expect(failed.lease?.taskId).toBe("stuck");
    expect(failed.countsAsRetry).toBe(false);
    s.send({ case: "ack", value: { lease: failed.lease, accepted: true } });
    await stopped;
    expect(runner.lifecycle).toBe("stopped");
  });

  it("hands running tasks back at once on handBack() during a drain, without waiting out the grace", async () => {
    // A grace far longer than the test's timeout: only handBack() can end this drain in time.
    const { runner } = startRunner(1, { drainGraceMs: 10 * 60_000 });
    const s = await broker.session(1);
    await s.take("hello");
    welcome(s);
    assignEcho(s, "long", { message: "x", delayMs: 10 * 60_000 });
    await expect.poll(() => runner.state.executingCount, { timeout: 10_000 }).toBe(1);
    const stopped = runner.stop();
    await expect.poll(() => runner.lifecycle).toBe("draining");
    void runner.handBack();
    const failed = await s.take("failed");
    expect(failed.lease?.taskId).toBe("long");
    expect(failed.countsAsRetry).toBe(false);
    s.send({ case: "ack", value: { lease: failed.lease, accepted: true } });
    await stopped;
    expect(runner.lifecycle).toBe("stopped");
  });

  it("runAll returns once there is nothing left to do", async () => {
    const runner = new Runner({
      url,
      apiKey: "k",
      tasks: [Echo],
      logger: createSdkLogger("runner-test", "silent"),
      idleMs: 100,
    });
    runners.push(runner);
    const finished = runner.runAll();
    const s = await broker.session(1);
    await s.take("hello");
    welcome(s);
    assignEcho(s, "one", { message: "1" });
    const c = await s.take("completed");
    s.send({ case: "ack", value: { lease: c.lease, accepted: true } });
    await finished;
    expect(runner.lifecycle).toBe("stopped");
  });

  it("runAll returns when no task ever arrives", async () => {
    const runner = new Runner({
      url,
      apiKey: "k",
      tasks: [Echo],
      logger: createSdkLogger("runner-test", "silent"),
      idleMs: 100,
    });
    runners.push(runner);
    const finished = runner.runAll({ handleSignals: false });
    const s = await broker.session(1);
    await s.take("hello");
    welcome(s);
    await finished;
    expect(runner.lifecycle).toBe("stopped");
  });

  it("heartbeats only while it holds leases: an idle runner sends none", async () => {
    const { runner } = startRunner(1);
    const s = await broker.session(1);
    await s.take("hello");
    welcome(s, [], 20);
    await new Promise((r) => setTimeout(r, 300));
    expect(s.count("heartbeat")).toBe(0);

    // A result waiting for its Ack keeps the lease held: heartbeats extend it.
    assignEcho(s, "held", { message: "x" });
    const completed = await s.take("completed");
    await s.take("heartbeat");
    s.send({ case: "ack", value: { lease: completed.lease, accepted: true } });
    await expect.poll(() => runner.state.heldCount, { timeout: 10_000 }).toBe(0);
    await new Promise((r) => setTimeout(r, 100));
    const after = s.count("heartbeat");
    await new Promise((r) => setTimeout(r, 300));
    expect(s.count("heartbeat")).toBe(after);
  });

  it("notices a connection that stopped answering by its HTTP/2 PINGs, with no heartbeat to send, and reconnects", async () => {
    // A TCP relay to the test broker that can swallow everything of the connections open so far.
    const relays = new Set<{ blackhole(): void; close(): void }>();
    const relay = net.createServer((inbound) => {
      const outbound = net.connect((server.address() as AddressInfo).port, "127.0.0.1");
      let open = true;
      inbound.on("data", (d) => open && outbound.write(d));
      outbound.on("data", (d) => open && inbound.write(d));
      const close = () => {
        inbound.destroy();
        outbound.destroy();
      };
      inbound.on("close", close);
      outbound.on("close", close);
      inbound.on("error", close);
      outbound.on("error", close);
      relays.add({ blackhole: () => (open = false), close });
    });
    await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
    try {
      const transport = createTransport({
        baseUrl: `http://127.0.0.1:${(relay.address() as AddressInfo).port}`,
        apiKey: "corral_test_secret",
        protocol: "grpc",
        keepalive: { pingIntervalMs: 200, pingTimeoutMs: 300 },
      });
      const { runner } = startRunner(1, { transport });
      const first = await broker.session(1);
      await first.take("hello");
      welcome(first, [], 50);
      await expect.poll(() => runner.lifecycle).toBe("running");
      for (const r of relays) r.blackhole();
      // The runner holds nothing, so it writes nothing: only the PINGs find the dead connection.
      const second = await broker.session(2);
      await second.take("hello");
      expect(first.count("heartbeat")).toBe(0);
    } finally {
      relay.close();
      for (const r of relays) r.close();
    }
  });

  it("runs on the transport of the client that created it", async () => {
    const client = new Client({ url: "http://127.0.0.1:9", transport: createRouterTransport((r) => broker.routes(r)) });
    const runner = client.runner({ tasks: [Echo], logger: createSdkLogger("runner-test", "silent"), drainGraceMs: 500 });
    runners.push(runner);
    void runner.runForever({ handleSignals: false });
    const s = await broker.session(1);
    await s.take("hello");
    welcome(s);
    assignEcho(s, "routed", { message: "in memory" });
    const c = await s.take("completed");
    expect(c.lease?.taskId).toBe("routed");
    // Acknowledged, so stopping the runner does not wait out its ack timeout.
    s.send({ case: "ack", value: { lease: c.lease, accepted: true } });
  });

  it("runAll gives up when no broker takes the runner", async () => {
    const runner = new Runner({
      url: "http://127.0.0.1:9", // nothing listens there
      apiKey: "k",
      tasks: [Echo],
      logger: createSdkLogger("runner-test", "silent"),
      reconnect: { baseDelayMs: 5, maxDelayMs: 20 },
    });
    runners.push(runner);
    await expect(runner.runAll({ handleSignals: false, unreachableMs: 300 })).rejects.toBeInstanceOf(UnavailableError);
    expect(runner.lifecycle).toBe("failed");
  });

  it("warns, naming the URL, when it cannot reach the suite after a few attempts, and keeps retrying", async () => {
    const lines: string[] = [];
    let warned: () => void = () => {};
    const warning = new Promise<void>((resolve) => (warned = resolve));
    const logger = pino({ level: "warn" }, { write: (line: string) => {
      lines.push(line);
      if (line.includes("cannot reach the Corral suite")) warned();
    } });
    const runner = new Runner({
      url: "http://127.0.0.1:9", // nothing listens there
      apiKey: "corral_warn1_0123456789abcdef0123",
      tasks: [Echo],
      logger,
      reconnect: { baseDelayMs: 5, maxDelayMs: 20 },
    });
    runners.push(runner);
    const done = runner.runForever({ handleSignals: false });
    await warning;
    const line = lines.find((l) => l.includes("cannot reach the Corral suite"))!;
    expect(line).toContain("http://127.0.0.1:9");
    expect(line).toContain("warn1");
    expect(line).not.toContain("0123456789abcdef0123");
    expect(runner.lifecycle).toBe("starting");
    await runner.stop();
    await done;
  });

  it("fails for good when the broker refuses the runner", async () => {
    broker.refuseWith = Code.NotFound;
    const { runner, done } = startRunner(1);
    await expect(done).rejects.toBeInstanceOf(ClusterNotFoundError);
    expect(runner.lifecycle).toBe("failed");
  });
});
