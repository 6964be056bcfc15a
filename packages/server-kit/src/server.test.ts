import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import {
  GetHostnameResponseSchema,
  GetRuntimeConfigResponseSchema,
  GetClusterRequestSchema,
  GetClusterResponseSchema,
  ClusterService,
  RuntimeService,
} from "@corral/proto";
import {
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus,
  reflectionV1,
} from "@corral/proto/grpc";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, mount, NotFoundError, requireTeam } from "./index.js";
import { startTestServer, type TestServer } from "./testing/index.js";

const KEY = "corral_abc_0123456789abcdef0123";

describe("server-kit server", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer({
      keys: { [KEY]: { kind: "user", teamId: "team-1", keyId: "abc" } },
      mounts: [
        mount(RuntimeService, {
          getHostname: (_req, ctx) => create(GetHostnameResponseSchema, { hostname: requireTeam(ctx) }),
          getRuntimeConfig: () => create(GetRuntimeConfigResponseSchema, { serverVersion: "test" }),
        }),
        mount(
          ClusterService,
          {
            getCluster(req) {
              if (req.slug === "missing") throw new NotFoundError("cluster", req.slug);
              if (req.slug === "boom") throw new Error("secret internals");
              return create(GetClusterResponseSchema, {});
            },
          },
          ["ResolveClusters"],
        ),
      ],
    });
  });
  afterAll(() => srv.close());

  const client = <S extends Parameters<typeof createClient>[0]>(s: S, key = KEY) =>
    createClient(s, createGrpcTransport({ baseUrl: srv.url, interceptors: [bearer(key)] }));

  it("reports SERVING for every mounted service, over a plain @grpc/grpc-js client", async () => {
    const Ctor = grpc.makeGenericClientConstructor(
      {
        check: {
          path: "/grpc.health.v1.Health/Check",
          requestStream: false,
          responseStream: false,
          requestSerialize: (m: unknown) => Buffer.from(toBinary(HealthCheckRequestSchema, m as never)),
          requestDeserialize: (b: Buffer) => fromBinary(HealthCheckRequestSchema, b),
          responseSerialize: (m: unknown) => Buffer.from(toBinary(HealthCheckResponseSchema, m as never)),
          responseDeserialize: (b: Buffer) => fromBinary(HealthCheckResponseSchema, b),
        },
      },
      "Health",
    );
    const c = new Ctor(`127.0.0.1:${srv.port}`, grpc.credentials.createInsecure());
    try {
      for (const service of ["", "corral.registry.v1.RuntimeService", "corral.registry.v1.ClusterService"]) {
        const res = await new Promise<{ status: number }>((resolve, reject) =>
          (c as any).check(create(HealthCheckRequestSchema, { service }), (err: Error | null, r: { status: number }) =>
            err ? reject(err) : resolve(r),
          ),
        );
        expect(res.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      }
    } finally {
      c.close();
    }
  });

  it("health watch streams the current status", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: srv.url }));
    const ac = new AbortController();
    for await (const res of health.watch({ service: "" }, { signal: ac.signal })) {
      expect(res.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      break;
    }
    ac.abort();
  });

  it("lists services and serves descriptors through reflection", async () => {
    const r = createClient(reflectionV1.ServerReflection, createGrpcTransport({ baseUrl: srv.url }));
    async function* requests() {
      yield create(reflectionV1.ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } });
      yield create(reflectionV1.ServerReflectionRequestSchema, {
        messageRequest: { case: "fileContainingSymbol", value: "corral.registry.v1.ClusterService" },
      });
    }
    const answers = [];
    for await (const res of r.serverReflectionInfo(requests())) answers.push(res);
    const list = answers[0]!.messageResponse;
    expect(list.case).toBe("listServicesResponse");
    const names = list.case === "listServicesResponse" ? list.value.service.map((s) => s.name) : [];
    expect(names).toEqual(expect.arrayContaining(["corral.registry.v1.ClusterService", "grpc.health.v1.Health"]));
    const files = answers[1]!.messageResponse;
    expect(files.case).toBe("fileDescriptorResponse");
    expect(files.case === "fileDescriptorResponse" && files.value.fileDescriptorProto.length).toBeGreaterThan(1);
  });

  it("answers UNAUTHENTICATED without a key and with an unknown key", async () => {
    const anon = createClient(RuntimeService, createGrpcTransport({ baseUrl: srv.url }));
    await expect(anon.getHostname({})).rejects.toMatchObject({ code: Code.Unauthenticated });
    await expect(client(RuntimeService, "corral_nope_0123456789abcdef0123").getHostname({})).rejects.toMatchObject({
      code: Code.Unauthenticated,
    });
    expect((await client(RuntimeService).getHostname({})).hostname).toBe("team-1");
  });

  it("keeps internal RPCs for the service key", async () => {
    await expect(client(ClusterService).resolveClusters({ teamId: "x" })).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
  });

  it("answers INVALID_ARGUMENT naming the field", async () => {
    const err = await client(ClusterService)
      .getCluster({ slug: "not a slug!" })
      .catch((e: unknown) => ConnectError.from(e));
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect((err as ConnectError).rawMessage).toContain("slug");
  });

  it("maps domain errors to codes and hides internal ones", async () => {
    await expect(client(ClusterService).getCluster({ slug: "missing" })).rejects.toMatchObject({ code: Code.NotFound });
    const err = ConnectError.from(await client(ClusterService).getCluster({ slug: "boom" }).catch((e: unknown) => e));
    expect(err.code).toBe(Code.Internal);
    expect(err.rawMessage).not.toContain("secret");
  });

  it("speaks Connect JSON over HTTP/1.1 and HTTP/2 on the same port", async () => {
    const res = await fetch(`${srv.url}/corral.registry.v1.RuntimeService/GetRuntimeConfig`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
      body: "{}",
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ serverVersion: "test" });
    const h2 = createClient(
      RuntimeService,
      createConnectTransport({ baseUrl: srv.url, httpVersion: "2", interceptors: [bearer(KEY)] }),
    );
    expect((await h2.getRuntimeConfig({})).serverVersion).toBe("test");
  });

  it("serves Prometheus metrics", async () => {
    const res = await fetch(`${srv.url}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("corral_rpc_requests_total");
  });
});

describe("server-kit response compression", () => {
  const big = "v".repeat(4096);
  const mounts = [mount(RuntimeService, { getRuntimeConfig: () => create(GetRuntimeConfigResponseSchema, { serverVersion: big }) })];

  /** One raw gRPC call that accepts gzip: the response's grpc-encoding and its message's compressed flag. */
  async function call(url: string): Promise<{ encoding: string | undefined; flag: number; code: string | undefined }> {
    const session = http2.connect(url);
    try {
      return await new Promise((resolve, reject) => {
        const req = session.request({
          ":method": "POST",
          ":path": "/corral.registry.v1.RuntimeService/GetRuntimeConfig",
          "content-type": "application/grpc",
          te: "trailers",
          "grpc-accept-encoding": "gzip",
          authorization: `Bearer ${KEY}`,
        });
        let headers: http2.IncomingHttpHeaders = {};
        const chunks: Buffer[] = [];
        req.on("response", (h) => (headers = h));
        req.on("data", (d: Buffer) => chunks.push(d));
        req.on("trailers", (t) => {
          const body = Buffer.concat(chunks);
          resolve({ encoding: headers["grpc-encoding"] as string | undefined, flag: body[0] ?? -1, code: t["grpc-status"] as string });
        });
        req.on("error", reject);
        req.end(Buffer.alloc(5)); // an empty, uncompressed request message
      });
    } finally {
      session.close();
    }
  }

  it("does not compress responses by default, even for a client that accepts gzip", async () => {
    const srv = await startTestServer({ keys: { [KEY]: { kind: "user", teamId: "t", keyId: "k" } }, mounts });
    try {
      const res = await call(srv.url);
      expect(res.code).toBe("0");
      // The header may still name gzip: gRPC flags compression per message, and this one is not.
      expect(res.flag).toBe(0);
    } finally {
      await srv.close();
    }
  });

  it("compresses responses from the configured size on", async () => {
    const srv = await startTestServer({ keys: { [KEY]: { kind: "user", teamId: "t", keyId: "k" } }, mounts, compressMinBytes: 1024 });
    try {
      const res = await call(srv.url);
      expect(res.code).toBe("0");
      expect(res.encoding).toBe("gzip");
      expect(res.flag).toBe(1);
    } finally {
      await srv.close();
    }
  });
});
