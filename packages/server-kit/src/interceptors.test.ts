// The interceptor chain at the edge, over real HTTP/2: text Postgres cannot store and unknown JSON
// names answer INVALID_ARGUMENT naming the field; a caller's request id is echoed only when short
// and plain; a client that hangs up mid-call is logged as a cancel, not an internal failure.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { ViolationsSchema } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { GetClusterResponseSchema, ClusterService, JobService, QueryJobsResponseSchema, WatchJobResponseSchema } from "@corral/proto";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, mount } from "./index.js";
import { startTestServer, type TestServer } from "./testing/index.js";

const KEY = "corral_abc_0123456789abcdef0123";

/** Resolves once `signal` aborts. */
const aborted = (signal: AbortSignal) => new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve())));

describe("edge interceptors", () => {
  let srv: TestServer;
  const records: Array<{ level: number; code?: string; method?: string; requestId?: string; msg?: string }> = [];
  const waiters: Array<() => void> = [];
  const logged = (method: string) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (!records.some((r) => r.method === method)) return false;
        resolve();
        return true;
      };
      if (!check()) waiters.push(() => void check());
    });
  let started: () => void = () => {};

  beforeAll(async () => {
    const logger = pino(
      { level: "debug" },
      {
        write(line: string) {
          records.push(JSON.parse(line));
          for (const w of waiters.splice(0)) w();
        },
      },
    );
    srv = await startTestServer({
      logger,
      keys: { [KEY]: { kind: "user", teamId: "team-1", keyId: "abc" } },
      mounts: [
        mount(ClusterService, {
          async getCluster(req, ctx) {
            if (req.slug === "hang-up") {
              started();
              await aborted(ctx.signal);
              // What a handler sees once its client is gone: some raw failure.
              throw new Error("write after the stream closed");
            }
            return create(GetClusterResponseSchema, {});
          },
        }),
        mount(JobService, {
          queryJobs: () => create(QueryJobsResponseSchema, {}),
          async *watchJob(_req, ctx) {
            yield create(WatchJobResponseSchema, {});
            await aborted(ctx.signal);
            throw new Error("write after the stream closed");
          },
        }),
      ],
    });
  });
  afterAll(() => srv.close());

  const transports = () => ({
    "gRPC binary": createGrpcTransport({ baseUrl: srv.url, interceptors: [bearer(KEY)] }),
    "Connect JSON": createConnectTransport({ baseUrl: srv.url, httpVersion: "2", useBinaryFormat: false, interceptors: [bearer(KEY)] }),
  });

  async function errorOf(run: () => Promise<unknown>): Promise<ConnectError> {
    try {
      await run();
    } catch (err) {
      return ConnectError.from(err);
    }
    throw new Error("expected the call to fail");
  }

  it("answers INVALID_ARGUMENT naming the field to a NUL in any string, over gRPC binary and Connect JSON", async () => {
    for (const [name, transport] of Object.entries(transports())) {
      const jobs = createClient(JobService, transport);
      const cases: Array<[Parameters<typeof jobs.queryJobs>[0], string]> = [
        [{ name: "a\u0000b" }, "name"],
        [{ clusterSlugs: ["ok", "x\u0000"] }, "cluster_slugs[1]"],
      ];
      for (const [bad, field] of cases) {
        const err = await errorOf(() => jobs.queryJobs(bad));
        expect(err.code, `${name} ${field}`).toBe(Code.InvalidArgument);
        expect(err.rawMessage, `${name} ${field}`).toMatch(new RegExp(`^${field.replace(/[[\]]/g, "\\$&")}: `));
        const [violations] = err.findDetails(ViolationsSchema);
        expect(violations?.violations[0]?.field?.elements.map((e) => e.fieldName)[0], `${name} ${field}`).toBe(field.replace(/\[.*/, ""));
      }
    }
  });

  it("answers INVALID_ARGUMENT to an unknown enum name or an unknown field in JSON", async () => {
    for (const body of [{ states: ["JOB_STATE_BOGUS"] }, { bogusField: 1 }]) {
      const res = await fetch(`${srv.url}/corral.jobs.v1.JobService/QueryJobs`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
        body: JSON.stringify(body),
      });
      const answer = (await res.json()) as { code: string; message: string };
      expect(answer.code, JSON.stringify(body)).toBe("invalid_argument");
      expect(answer.message, JSON.stringify(body)).toMatch(/^(states\[0\]|bogus_field|bogusField): /);
    }
  });

  it("echoes a plain x-request-id and replaces one that is too long or holds odd characters", async () => {
    const call = async (id: string) => {
      let echoed: string | null = null;
      const client = createClient(ClusterService, createGrpcTransport({ baseUrl: srv.url, interceptors: [bearer(KEY)] }));
      await client.getCluster({}, { headers: { "x-request-id": id }, onHeader: (h) => (echoed = h.get("x-request-id")) });
      return echoed as string | null;
    };
    expect(await call("req-42.abc_DEF")).toBe("req-42.abc_DEF");
    for (const bad of ["x".repeat(129), "a b", "a\tb", "<script>"]) {
      const echoed = await call(bad);
      expect(echoed, bad).not.toBe(bad);
      expect(echoed!.length, bad).toBeLessThanOrEqual(128);
      expect(echoed, bad).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it("logs a client that hangs up mid-call as canceled at info, never as an internal error", async () => {
    for (const [name, transport] of Object.entries(transports())) {
      records.length = 0;
      const abort = new AbortController();
      const begun = new Promise<void>((r) => (started = r));
      const client = createClient(ClusterService, transport);
      const call = client.getCluster({ slug: "hang-up" }, { signal: abort.signal }).catch(() => {});
      await begun;
      abort.abort();
      await call;
      await logged("GetCluster");
      const record = records.find((r) => r.method === "GetCluster")!;
      expect(record.code, name).toBe("canceled");
      expect(record.level, name).toBe(30);
    }
    // A server stream the client leaves after its first message.
    records.length = 0;
    const jobs = createClient(JobService, transports()["gRPC binary"]);
    const abort = new AbortController();
    try {
      for await (const _ of jobs.watchJob({ jobId: "j" }, { signal: abort.signal })) abort.abort();
    } catch {
      // the client's own cancel
    }
    await logged("WatchJob");
    const record = records.find((r) => r.method === "WatchJob")!;
    expect(record.code).toBe("canceled");
    expect(record.level).toBe(30);
    expect(records.filter((r) => r.level >= 50)).toEqual([]);
  });
});
