// Service clients (createServiceClient: unary calls as gRPC requests on an HTTP/2 session through
// @corral/wire's h2-transport, streams over connect-node) against a real server-kit server: answers, headers both ways, error codes
// with their messages, deadlines, cancellation, a peer that is down and comes back; and against a
// bare HTTP/2 server, the answers a gRPC server should not give.
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  ClusterService,
  GetClusterResponseSchema,
  GetHostnameResponseSchema,
  ResolveClustersResponseSchema,
  RuntimeService,
} from "@corral/proto";
import { Health, HealthCheckResponse_ServingStatus } from "@corral/proto/grpc";
import http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServiceClient, FailedPreconditionError, mount, NotFoundError, requireTeam, requestIdHeader } from "./index.js";
import { createH2Transport, grpcTimeout } from "@corral/wire";
import { startTestServer, TEST_SERVICE_KEY, type TestServer } from "./testing/index.js";

const KEY = "corral_gjs_0123456789abcdef0123";

describe("service clients (gRPC unary over HTTP/2)", () => {
  let srv: TestServer;
  const seen: { requestId?: string | null } = {};
  beforeAll(async () => {
    srv = await startTestServer({
      keys: { [KEY]: { kind: "user", teamId: "team-7", keyId: "gjs" } },
      mounts: [
        mount(RuntimeService, {
          getHostname: (_req, ctx) => {
            seen.requestId = ctx.requestHeader.get(requestIdHeader);
            ctx.responseHeader.set("x-answered-by", "test");
            return create(GetHostnameResponseSchema, { hostname: requireTeam(ctx) });
          },
        }),
        mount(
          ClusterService,
          {
            async getCluster(req, ctx) {
              if (req.slug === "missing") throw new NotFoundError("cluster", req.slug);
              if (req.slug === "punctuated") throw new FailedPreconditionError("named by configuration team/box: a, b; c=d?#@&+$ 100% done");
              if (req.slug === "slow") await new Promise((r) => setTimeout(r, 2_000));
              if (req.slug === "hang") await new Promise((r) => ctx.signal.addEventListener("abort", r));
              return create(GetClusterResponseSchema, {});
            },
            resolveClusters: (req) =>
              create(ResolveClustersResponseSchema, { clusters: req.slugs.map((slug) => ({ id: `id-${slug}`, slug })) }),
          },
          ["ResolveClusters"],
        ),
      ],
    });
  });
  afterAll(() => srv.close());

  it("calls with the key, passes headers both ways and answers typed messages", async () => {
    const runtime = createServiceClient(RuntimeService, { baseUrl: srv.url, apiKey: KEY });
    let header: Headers | undefined;
    const res = await runtime.getHostname({}, { headers: { [requestIdHeader]: "req-123" }, onHeader: (h) => (header = h) });
    expect(res.hostname).toBe("team-7");
    expect(seen.requestId).toBe("req-123");
    expect(header?.get("x-answered-by")).toBe("test");
    const internal = createServiceClient(ClusterService, { baseUrl: srv.url, apiKey: TEST_SERVICE_KEY });
    const resolved = await internal.resolveClusters({ teamId: "t", slugs: ["a", "b"] });
    expect(resolved.clusters.map((c) => c.id)).toEqual(["id-a", "id-b"]);
  });

  it("throws ConnectErrors with the server's code and message", async () => {
    const clusters = createServiceClient(ClusterService, { baseUrl: srv.url, apiKey: KEY });
    const invalid = ConnectError.from(await clusters.getCluster({ slug: "not a slug!" }).catch((e: unknown) => e));
    expect(invalid.code).toBe(Code.InvalidArgument);
    expect(invalid.rawMessage).toContain("slug");
    await expect(clusters.getCluster({ slug: "missing" })).rejects.toMatchObject({ code: Code.NotFound });
    const punctuated = ConnectError.from(await clusters.getCluster({ slug: "punctuated" }).catch((e: unknown) => e));
    expect(punctuated.code).toBe(Code.FailedPrecondition);
    expect(punctuated.rawMessage).toBe("named by configuration team/box: a, b; c=d?#@&+$ 100% done");
    await expect(clusters.resolveClusters({ teamId: "t" })).rejects.toMatchObject({ code: Code.PermissionDenied });
    const stranger = createServiceClient(ClusterService, { baseUrl: srv.url, apiKey: "corral_nope_0123456789abcdef0123" });
    await expect(stranger.getCluster({ slug: "x" })).rejects.toMatchObject({ code: Code.Unauthenticated });
  });

  it("gives up at the deadline and when the caller aborts", async () => {
    const clusters = createServiceClient(ClusterService, { baseUrl: srv.url, apiKey: KEY, timeoutMs: 100 });
    await expect(clusters.getCluster({ slug: "slow" })).rejects.toMatchObject({ code: Code.DeadlineExceeded });
    // A per-call timeout wins over the client's default.
    await expect(clusters.getCluster({ slug: "x" }, { timeoutMs: 5_000 })).resolves.toBeDefined();
    const patient = createServiceClient(ClusterService, { baseUrl: srv.url, apiKey: KEY, timeoutMs: 0 });
    const ac = new AbortController();
    const call = patient.getCluster({ slug: "hang" }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expect(call).rejects.toMatchObject({ code: Code.Canceled });
    await expect(patient.getCluster({ slug: "x" }, { signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: Code.Canceled,
    });
  });

  it("streams through the same client (health watch)", async () => {
    const health = createServiceClient(Health, { baseUrl: srv.url, apiKey: KEY });
    const ac = new AbortController();
    for await (const res of health.watch({ service: "" }, { signal: ac.signal })) {
      expect(res.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      break;
    }
    ac.abort();
  });

  it("sends the deadline as grpc-timeout and many calls at once over one session", async () => {
    const internal = createServiceClient(ClusterService, { baseUrl: srv.url, apiKey: TEST_SERVICE_KEY, timeoutMs: 7_000 });
    const answers = await Promise.all(
      Array.from({ length: 300 }, (_, i) => internal.resolveClusters({ teamId: "t", slugs: [`s${i}`] })),
    );
    expect(answers.map((a) => a.clusters[0]!.id)).toEqual(Array.from({ length: 300 }, (_, i) => `id-s${i}`));
    expect(grpcTimeout(7_000)).toBe("7000m");
    expect(grpcTimeout(0.2)).toBe("1m");
    expect(grpcTimeout(200_000_000)).toBe("200000S");
  });

  it("answers UNAVAILABLE while the peer is down and reaches it once it is back", async () => {
    const port = srv.port;
    const down = createServiceClient(RuntimeService, { baseUrl: srv.url, apiKey: KEY });
    expect((await down.getHostname({})).hostname).toBe("team-7");
    await srv.close();
    await expect(down.getHostname({})).rejects.toMatchObject({ code: Code.Unavailable });
    srv = await startTestServer({
      port,
      keys: { [KEY]: { kind: "user", teamId: "team-8", keyId: "gjs" } },
      mounts: [mount(RuntimeService, { getHostname: (_req, ctx) => create(GetHostnameResponseSchema, { hostname: requireTeam(ctx) }) })],
    });
    // Redialled within the 2 s reconnect backoff cap.
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        expect((await down.getHostname({})).hostname).toBe("team-8");
        break;
      } catch (err) {
        if (ConnectError.from(err).code !== Code.Unavailable || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });

  it("refuses URLs that are not http or https", () => {
    const streams = () => {
      throw new Error("not used");
    };
    expect(() => createH2Transport({ baseUrl: "unix:///tmp/x", protocol: "grpc", streams })).toThrow(/http/);
  });
});

describe("gRPC unary client against answers a gRPC server should not give", () => {
  let server: http2.Http2Server;
  let url: string;
  const sessions = new Set<http2.ServerHttp2Session>();
  beforeAll(async () => {
    server = http2.createServer((req, res) => {
      const path = req.url;
      if (path.endsWith("/GetHostname")) {
        // Not gRPC at all: an HTTP error without grpc-status.
        res.writeHead(503, { "content-type": "text/plain" });
        res.end("overloaded");
      } else if (path.endsWith("/GetRuntimeConfig")) {
        // gRPC status OK but two messages for a unary call.
        const one = Buffer.from([0, 0, 0, 0, 0]);
        res.writeHead(200, { "content-type": "application/grpc" });
        res.addTrailers({ "grpc-status": "0" });
        res.end(Buffer.concat([one, one]));
      } else {
        // The stream is reset before any answer.
        req.stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      }
    });
    server.on("session", (session) => sessions.add(session));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    const closed = new Promise<void>((r) => server.close(() => r()));
    for (const session of sessions) session.destroy();
    await closed;
  });

  it("maps HTTP errors, malformed answers and resets to gRPC codes", async () => {
    const runtime = createServiceClient(RuntimeService, { baseUrl: url, apiKey: KEY });
    const http = ConnectError.from(await runtime.getHostname({}).catch((e: unknown) => e));
    expect(http.code).toBe(Code.Unavailable);
    expect(http.rawMessage).toContain("503");
    await expect(runtime.getRuntimeConfig({})).rejects.toMatchObject({ code: Code.Unimplemented });
    const clusters = createServiceClient(ClusterService, { baseUrl: url, apiKey: KEY });
    await expect(clusters.getCluster({ slug: "x" })).rejects.toMatchObject({ code: Code.Unavailable });
  });
});

describe("gRPC unary client and a peer that goes away", () => {
  it("finishes a call in flight when the peer sends GOAWAY, and dials a new session for the next", async () => {
    const sessions: http2.ServerHttp2Session[] = [];
    const answer = (stream: http2.ServerHttp2Stream, hostname: string) => {
      const body = toBinary(GetHostnameResponseSchema, create(GetHostnameResponseSchema, { hostname }));
      const frame = Buffer.alloc(5 + body.length);
      frame.writeUInt32BE(body.length, 1);
      frame.set(body, 5);
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(frame);
    };
    const server = http2.createServer();
    server.on("session", (session) => sessions.push(session));
    server.on("stream", (stream) => {
      const n = sessions.length;
      // The first session's call is slow: GOAWAY arrives while it is in flight.
      if (n === 1) setTimeout(() => answer(stream, `session-${n}`), 150);
      else answer(stream, `session-${n}`);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const runtime = createServiceClient(RuntimeService, { baseUrl: url, apiKey: KEY });
      const inFlight = runtime.getHostname({});
      await new Promise((r) => setTimeout(r, 50));
      sessions[0]!.goaway(http2.constants.NGHTTP2_NO_ERROR);
      await new Promise((r) => setTimeout(r, 20));
      const next = await runtime.getHostname({});
      expect((await inFlight).hostname).toBe("session-1");
      expect(next.hostname).toBe("session-2");
      expect(sessions).toHaveLength(2);
    } finally {
      for (const s of sessions) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
