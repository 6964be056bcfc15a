// Limits: per-team quotas on job-service (queued tasks, submissions per second) answer
// RESOURCE_EXHAUSTED with a `retry-after-ms` hint; the HTTP/2 limits each service reads from the
// environment (max concurrent streams per connection, max request message size) are advertised
// and enforced.
import http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { ClusterService, JobService } from "@corral/proto";
import { rawTask } from "@corral/sdk";
import { createServiceClient } from "@corral/server-kit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSuite, type Suite } from "../support/suite.js";

const MAX_STREAMS = 8;
const MAX_MESSAGE = 64 * 1024;

function fail(p: Promise<unknown>): Promise<ConnectError> {
  return p.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (err: unknown) => ConnectError.from(err),
  );
}

const task = (input: unknown = {}) => rawTask({ name: "limits/Never", version: "v1.0" }, input);

describe("limits", () => {
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite({
      label: "limits",
      env: {
        CORRAL_QUOTA_QUEUED_TASKS: "50",
        CORRAL_MAX_CONCURRENT_STREAMS: String(MAX_STREAMS),
        CORRAL_MAX_MESSAGE_BYTES: String(MAX_MESSAGE),
      },
    });
  });
  afterAll(async () => {
    await suite?.stop();
  });

  const jobsOf = (key: string) => createServiceClient(JobService, { baseUrl: suite.jobs.url, apiKey: key, timeoutMs: 10_000 });

  it("refuses tasks beyond the team's queued quota with a retry hint, and only for that team", async () => {
    const team = await suite.newTeam("limits-queued");
    const jobs = jobsOf(team.key);
    await jobs.submitJob({ name: "fill", tasks: Array.from({ length: 40 }, () => task()) });
    const err = await fail(jobs.submitJob({ name: "over", tasks: Array.from({ length: 20 }, () => task()) }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(Number(err.metadata.get("retry-after-ms"))).toBeGreaterThan(0);
    // Within the quota still works, and another team is not affected.
    await jobs.submitJob({ name: "fits", tasks: Array.from({ length: 10 }, () => task()) });
    const other = await suite.newTeam("limits-other");
    await jobsOf(other.key).submitJob({ name: "other", tasks: Array.from({ length: 40 }, () => task()) });
  });

  it("refuses submissions beyond the rate with a retry hint that works", async () => {
    // Its own suite: a rate of 2 per second would also refuse the other tests' submissions.
    const rated = await startSuite({ label: "limits_rate", env: { CORRAL_QUOTA_SUBMISSIONS_PER_SECOND: "2" } });
    try {
      await rateTest(rated);
    } finally {
      await rated.stop();
    }
  });

  async function rateTest(rated: Suite) {
    const team = await rated.newTeam("limits-rate");
    const jobs = createServiceClient(JobService, { baseUrl: rated.jobs.url, apiKey: team.key, timeoutMs: 10_000 });
    // Four at a time (below the stream limit of one connection); 20 in all is far above 2 per second.
    const settled: PromiseSettledResult<unknown>[] = [];
    for (let i = 0; i < 20; i += 4) {
      settled.push(...(await Promise.allSettled([0, 1, 2, 3].map((j) => jobs.submitJob({ name: `burst-${i + j}`, tasks: [task()] })))));
    }
    const refused = settled.filter((s) => s.status === "rejected").map((s) => ConnectError.from((s as PromiseRejectedResult).reason));
    expect(settled.filter((s) => s.status === "fulfilled").length).toBeGreaterThanOrEqual(2);
    expect(refused.length).toBeGreaterThan(0);
    for (const e of refused) expect(e.code, e.message).toBe(Code.ResourceExhausted);
    const retryAfter = Math.max(...refused.map((e) => Number(e.metadata.get("retry-after-ms"))));
    expect(retryAfter).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, retryAfter));
    await jobs.submitJob({ name: "after-wait", tasks: [task()] });
  }

  it("answers RESOURCE_EXHAUSTED to a message above the size limit on every service, and serves the next call", async () => {
    const big = "x".repeat(MAX_MESSAGE + 1);
    const jobs = jobsOf(suite.apiKey);
    expect((await fail(jobs.submitJob({ name: "big", tasks: [rawTask({ name: "limits/Never", version: "v1.0" }, big)] }))).code).toBe(
      Code.ResourceExhausted,
    );
    const clusters = createServiceClient(ClusterService, { baseUrl: suite.registry.url, apiKey: suite.apiKey, timeoutMs: 10_000 });
    expect((await fail(clusters.createCluster({ name: "big", description: big }))).code).toBe(Code.ResourceExhausted);
    await clusters.getCluster({});
    await jobs.submitJob({ name: "small", tasks: [task()] });
  });

  for (const service of ["registry", "jobs", "broker"] as const) {
    it(`advertises and enforces ${MAX_STREAMS} concurrent streams per connection (${service})`, async () => {
      const session = http2.connect(suite[service].url);
      try {
        await new Promise((r) => session.once("remoteSettings", r));
        expect(session.remoteSettings.maxConcurrentStreams).toBe(MAX_STREAMS);
        // Requests whose body never ends hold their streams open.
        const held = Array.from({ length: MAX_STREAMS }, () =>
          session.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Check", "content-type": "application/json" }),
        );
        for (const h of held) h.on("error", () => {});
        let answered = false;
        const extra = session.request({ ":method": "GET", ":path": "/healthz" });
        const response = new Promise<void>((resolve) => extra.once("response", () => ((answered = true), resolve())));
        extra.end();
        await new Promise<void>((resolve) => session.ping(() => resolve()));
        await new Promise((r) => setTimeout(r, 300));
        expect(answered).toBe(false);
        held[0]!.close(http2.constants.NGHTTP2_CANCEL);
        await response;
        for (const h of held) h.close(http2.constants.NGHTTP2_CANCEL);
      } finally {
        session.destroy();
      }
    });
  }
});
