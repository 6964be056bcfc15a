// The release runner against a small in-test suite over real HTTP/2: a scripted TaskBrokerService.Work
// and the ReleaseService subset a runner uses (WatchDeployments, DownloadRelease, ReportReleaseStatus).
import { createHash } from "node:crypto";
import http2 from "node:http2";
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  ReleaseLoadState,
  ReleaseSchema,
  ReleaseService,
  RunnerKind,
  TaskBrokerService,
  WorkResponseSchema,
  type ReportReleaseStatusRequest,
  type Release,
  type WorkRequest,
  type WorkResponse,
} from "@corral/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AsyncQueue } from "@corral/wire";
import { InMemoryCache } from "../../cache.js";
import { createSdkLogger } from "../../logger.js";
import { ReleaseRunner } from "./release-runner.js";
import { Echo } from "../../tasks/echo.js";

/** A release bundle whose task says which version ran it; `wait` holds it until the job cache has "go". */
function bundle(version: string, taskVersion: string, pad = ""): string {
  return `
import { Task } from "@corral/sdk";
export class Work extends Task {
  static identifier = { name: "t/Work", version: "${taskVersion}" };
  async execute(ctx) {
    ctx.setDisplay("ran on ${version}");
    if (this.input?.wait) while ((await ctx.cache.getText("go")) === undefined) await new Promise((r) => setTimeout(r, 10));
  }
}
export const pad = ${JSON.stringify(pad)};
`;
}

class Suite {
  readonly releases = new Map<string, { release: Release; bytes: Uint8Array }>();
  deployed: string[] = [];
  readonly #watchers = new Set<AsyncQueue<string[]>>();
  readonly reports: ReportReleaseStatusRequest[] = [];
  readonly received: WorkRequest[] = [];
  readonly outbox = new AsyncQueue<WorkResponse>();
  #waiters: Array<() => void> = [];

  publish(name: string, version: string, source: string): void {
    const bytes = new TextEncoder().encode(source);
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    const release = create(ReleaseSchema, { name, version, digest, sizeBytes: BigInt(bytes.length), manifest: { nodeEngine: ">=20" } });
    this.releases.set(`${name}@${version}`, { release, bytes });
  }

  deploy(keys: string[]): void {
    this.deployed = keys;
    for (const w of this.#watchers) w.push(keys);
  }

  notify(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Resolves once a received Work message or report satisfies the predicate. */
  async until<T>(find: () => T | undefined): Promise<T> {
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  send(message: Parameters<typeof create<typeof WorkResponseSchema>>[1] extends infer I ? (I extends { message?: infer M } ? M : never) : never) {
    this.outbox.push(create(WorkResponseSchema, { message }));
  }

  routes = (router: ConnectRouter) => {
    const suite = this;
    router.service(ReleaseService, {
      async *watchDeployments(_req, ctx) {
        const queue = new AsyncQueue<string[]>();
        suite.#watchers.add(queue);
        ctx.signal.addEventListener("abort", () => queue.end());
        queue.push(suite.deployed);
        try {
          for await (const keys of queue) {
            yield {
              clusterSlug: "testing",
              deployments: keys.map((k) => ({ clusterSlug: "testing", release: suite.releases.get(k)!.release })),
            };
          }
        } finally {
          suite.#watchers.delete(queue);
        }
      },
      async *downloadRelease(req) {
        const r = suite.releases.get(`${req.name}@${req.version}`)!;
        yield { part: { case: "release", value: r.release } };
        for (let i = 0; i < r.bytes.length; i += 1000) yield { part: { case: "chunk", value: r.bytes.slice(i, i + 1000) } };
      },
      reportReleaseStatus(req) {
        suite.reports.push(req);
        suite.notify();
        return {};
      },
    });
    router.service(TaskBrokerService, {
      work(requests) {
        void (async () => {
          for await (const m of requests) {
            suite.received.push(m);
            suite.notify();
          }
        })().catch(() => undefined);
        return suite.outbox;
      },
    });
  };
}

const tile = (version: string) => ({ name: "t/Work", version });

function assign(suite: Suite, taskId: string, input: object) {
  suite.send({
    case: "assign",
    value: {
      lease: { taskId, attempt: 1, token: `tok-${taskId}` },
      task: {
        taskId,
        jobId: "job-1",
        teamId: "team",
        clusterId: "c1",
        identifier: tile("v1.0"),
        attempt: 1,
        input: new TextEncoder().encode(JSON.stringify(input)),
      },
    },
  });
}

describe("ReleaseRunner", () => {
  let server: http2.Http2Server;
  let suite: Suite;
  let dir: string;
  let runner: ReleaseRunner;
  /** The job cache of the runner, telling the test when a task reads a key. */
  const cache = new (class extends InMemoryCache {
    onGet: ((key: string) => void) | undefined;
    override get(jobId: string, key: string) {
      this.onGet?.(key);
      return super.get(jobId, key);
    }
  })();
  let running: Promise<void>;

  beforeAll(async () => {
    suite = new Suite();
    dir = await mkdtemp(join(os.tmpdir(), "corral-release-runner-"));
    server = http2.createServer(connectNodeAdapter({ routes: (r) => suite.routes(r) }));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    runner = new ReleaseRunner({
      url,
      apiKey: "corral_test_secret",
      cluster: "testing",
      concurrency: 4,
      cache,
      bundleDir: dir,
      logger: createSdkLogger("release-runner-test", process.env.DEBUG_RR ? "debug" : "silent"),
      restart: { baseDelayMs: 20, maxDelayMs: 100 },
      drainGraceMs: 2000,
      ackTimeoutMs: 200,
    });
    running = runner.runForever({ handleSignals: false });
  });

  afterAll(async () => {
    await runner.stop();
    await running.catch(() => undefined);
    server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const reregisters = () => suite.received.filter((m) => m.message.case === "reregister").map((m) => m.message.value as { identifiers: Array<{ name: string; version: string }> });
  const results = (taskId: string) =>
    suite.received.find((m) => (m.message.case === "completed" || m.message.case === "failed") && m.message.value.lease?.taskId === taskId)?.message;
  const lastReport = (name: string, version: string, state: ReleaseLoadState) =>
    suite.reports.at(-1)?.releases.find((r) => r.name === name && r.version === version && r.state === state);

  it("follows deployments: registers without reconnecting, swaps versions without dropping a running task, restarts a killed child, reports a bad bundle", async () => {
    // Nothing deployed: a release runner says so and registers nothing.
    const hello = await suite.until(() => suite.received.find((m) => m.message.case === "hello")?.message.value as { kind: RunnerKind; identifiers: unknown[] } | undefined);
    expect(hello.kind).toBe(RunnerKind.RELEASE);
    expect(hello.identifiers).toEqual([]);
    suite.send({ case: "welcome", value: { sessionId: "s1", leaseDuration: durationFromMs(30_000), heartbeatInterval: durationFromMs(1000) } });

    suite.publish("geo", "1.0.0", bundle("1.0.0", "v1.0"));
    suite.deploy(["geo@1.0.0"]);
    await suite.until(() => reregisters().find((r) => r.identifiers.some((i) => i.version === "v1.0")));
    expect(runner.identifiers).toEqual([tile("v1.0")]);
    await suite.until(() => lastReport("geo", "1.0.0", ReleaseLoadState.LOADED));
    const v1pid = runner.pidOf("geo@1.0.0");
    expect(v1pid).toBeGreaterThan(0);

    // A long task on 1.0.0, then 1.1.0 is deployed: new tasks go to 1.1.0, the running one finishes on 1.0.0.
    assign(suite, "long", { wait: true });
    suite.publish("geo", "1.1.0", bundle("1.1.0", "v1.1"));
    suite.deploy(["geo@1.1.0"]);
    await suite.until(() => reregisters().find((r) => r.identifiers.some((i) => i.version === "v1.1")));
    expect(runner.identifiers).toEqual([tile("v1.1")]);
    assign(suite, "after", {});
    const after = await suite.until(() => results("after"));
    expect(after).toMatchObject({ case: "completed", value: { display: "ran on 1.1.0" } });
    expect(lastReport("geo", "1.0.0", ReleaseLoadState.DRAINING)).toBeDefined();
    await cache.put("job-1", "go", new TextEncoder().encode("1"));
    const long = await suite.until(() => results("long"));
    expect(long).toMatchObject({ case: "completed", value: { display: "ran on 1.0.0" } });
    await suite.until(() => (runner.pidOf("geo@1.0.0") === undefined && !suite.reports.at(-1)?.releases.some((r) => r.version === "1.0.0") ? true : undefined));
    expect(suite.received.filter((m) => m.message.case === "hello")).toHaveLength(1);

    // kill -9 of the child mid-task: the task comes back as the runner's fault, after its identifiers were withdrawn; the child is back.
    await cache.delete("job-1", "go");
    const waiting = new Promise<void>((resolve) => (cache.onGet = (key) => key === "go" && resolve()));
    assign(suite, "killed", { wait: true });
    await waiting; // the task runs in the child now
    const pid = runner.pidOf("geo@1.1.0")!;
    process.kill(pid, "SIGKILL");
    const killed = await suite.until(() => results("killed"));
    expect(killed).toMatchObject({ case: "failed", value: { countsAsRetry: false } });
    const killedAt = suite.received.findIndex((m) => m.message.case === "failed" && m.message.value.lease?.taskId === "killed");
    const withdrawn = suite.received.slice(0, killedAt).findLast((m) => m.message.case === "reregister");
    expect(withdrawn?.message.value).toMatchObject({ identifiers: [] });
    await suite.until(() => lastReport("geo", "1.1.0", ReleaseLoadState.LOADED)?.restarts === 1 ? true : undefined);
    expect(runner.pidOf("geo@1.1.0")).not.toBe(pid);

    // A bundle that throws at import is FAILED with its error; the others keep serving.
    suite.publish("bad", "1.0.0", `throw new Error("missing config at import");`);
    suite.deploy(["geo@1.1.0", "bad@1.0.0"]);
    const failed = await suite.until(() => lastReport("bad", "1.0.0", ReleaseLoadState.FAILED));
    expect(failed.error).toContain("missing config at import");
    expect(runner.identifiers).toEqual([tile("v1.1")]);

    // Undeployed: nothing registered.
    suite.deploy([]);
    await suite.until(() => (reregisters().at(-1)?.identifiers.length === 0 && runner.identifiers.length === 0 ? true : undefined));
  });

  it("stops its release processes on stop() without taking their exit for a crash", async () => {
    suite.deploy(["geo@1.1.0"]);
    await suite.until(() => (runner.identifiers.length === 1 ? true : undefined));
    const pid = runner.pidOf("geo@1.1.0")!;
    const restarts = runner.statuses().find((s) => s.version === "1.1.0")!.restarts;
    await runner.stop();
    expect(() => process.kill(pid, 0)).toThrow();
    // Still the state it had: not "loading" again with one more restart counted.
    expect(runner.statuses().find((s) => s.version === "1.1.0")).toMatchObject({ state: "loaded", restarts });
  });
});

describe("ReleaseRunner with fallback tasks", () => {
  let server: http2.Http2Server;
  let suite: Suite;
  let dir: string;
  let runner: ReleaseRunner;
  let running: Promise<void>;

  beforeAll(async () => {
    suite = new Suite();
    dir = await mkdtemp(join(os.tmpdir(), "corral-release-fallback-"));
    server = http2.createServer(connectNodeAdapter({ routes: (r) => suite.routes(r) }));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    runner = new ReleaseRunner({
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      apiKey: "corral_test_secret",
      cluster: "testing",
      bundleDir: dir,
      fallbackTasks: [Echo],
      logger: createSdkLogger("release-fallback-test", "silent"),
      drainGraceMs: 2000,
      ackTimeoutMs: 200,
    });
    running = runner.runForever({ handleSignals: false });
  });

  afterAll(async () => {
    await runner.stop();
    await running.catch(() => undefined);
    server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const registered = () => {
    const last = suite.received.findLast((m) => m.message.case === "reregister" || m.message.case === "hello");
    return (last?.message.value as { identifiers: Array<{ name: string; version: string }> } | undefined)?.identifiers;
  };

  it("serves the fallback tasks while nothing is deployed and withdraws them live once a release is", async () => {
    await suite.until(() => suite.received.find((m) => m.message.case === "hello"));
    suite.send({ case: "welcome", value: { sessionId: "s1", leaseDuration: durationFromMs(30_000), heartbeatInterval: durationFromMs(1000) } });
    await suite.until(() => (registered()?.some((i) => i.name === "corral/Echo") ? true : undefined));

    suite.send({
      case: "assign",
      value: {
        lease: { taskId: "echo-1", attempt: 1, token: "tok-echo-1" },
        task: { taskId: "echo-1", jobId: "job-1", teamId: "team", clusterId: "c1", identifier: { name: "corral/Echo", version: "v1.0" }, attempt: 1, input: new TextEncoder().encode(JSON.stringify({ message: "hi" })) },
      },
    });
    const done = await suite.until(() => suite.received.find((m) => m.message.case === "completed" && m.message.value.lease?.taskId === "echo-1"));
    expect(done.message.case).toBe("completed");

    suite.publish("geo", "1.0.0", bundle("1.0.0", "v1.0"));
    suite.deploy(["geo@1.0.0"]);
    await suite.until(() => (registered()?.some((i) => i.name === "t/Work") ? true : undefined));
    expect(registered()).toMatchObject([tile("v1.0")]);
    expect(runner.identifiers).toEqual([tile("v1.0")]);
    expect(suite.received.filter((m) => m.message.case === "hello")).toHaveLength(1);
  });
});
