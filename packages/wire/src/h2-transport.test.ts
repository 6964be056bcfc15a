// The HTTP/2 unary transport in both wire protocols against a real server-kit server (a test-only
// dependency: the transport must answer as connect-node's do against the server Corral runs), call
// for call against connect-node's transports with the same interceptors: answers, headers and
// trailers, error codes, messages, details and metadata, deadlines, cancellation.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import {
  ClusterService,
  GetClusterResponseSchema,
  GetHostnameResponseSchema,
  JobService,
  ResolveClustersResponseSchema,
  RuntimeService,
} from "@corral/proto";
import { mount, NotFoundError, requireTeam } from "@corral/server-kit";
import { startTestServer, TEST_SERVICE_KEY, type TestServer } from "@corral/server-kit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createH2Transport, type WireProtocol } from "./h2-transport.js";

const KEY = "corral_h2t_0123456789abcdef0123";

/** What a call came to, in a form two transports can be compared by. */
async function outcome(call: () => Promise<{ header: Headers | undefined; trailer: Headers | undefined; message: unknown }>) {
  // Request ids differ per call: only their presence is compared.
  const pick = (h: Headers | undefined) =>
    Object.fromEntries(
      [...(h?.entries() ?? [])]
        .filter(([k]) => k.startsWith("x-") || k === "grpc-status")
        .map(([k, v]) => [k, k === "x-request-id" ? "(set)" : v]),
    );
  try {
    const r = await call();
    return { ok: r.message, header: pick(r.header), trailer: pick(r.trailer) };
  } catch (err) {
    const e = ConnectError.from(err);
    return {
      code: Code[e.code],
      message: e.rawMessage,
      details: e.details.map((d) => ("desc" in d ? d.desc.typeName : d.type)),
      metadata: pick(e.metadata),
    };
  }
}

describe.each<WireProtocol>(["connect", "grpc"])("h2 transport over %s", (protocol) => {
  let srv: TestServer;
  const seen: string[] = [];
  const order: string[] = [];
  beforeAll(async () => {
    srv = await startTestServer({
      keys: { [KEY]: { kind: "user", teamId: "team-7", keyId: "h2t" } },
      mounts: [
        mount(RuntimeService, {
          getHostname: (_req, ctx) => {
            seen.push(ctx.requestHeader.get("x-asked-by") ?? "");
            ctx.responseHeader.set("x-answered-by", "test");
            ctx.responseTrailer.set("x-trailing", "yes");
            return create(GetHostnameResponseSchema, { hostname: requireTeam(ctx) });
          },
        }),
        mount(
          ClusterService,
          {
            async getCluster(req, ctx) {
              if (req.slug === "missing") throw new NotFoundError("cluster", req.slug);
              if (req.slug === "metadata") throw new ConnectError("with metadata", Code.Aborted, { "x-why": "because" });
              if (req.slug === "crash") throw new Error("secret internals");
              if (req.slug === "slow") await new Promise((r) => setTimeout(r, 2_000));
              if (req.slug === "hang") await new Promise((r) => ctx.signal.addEventListener("abort", r));
              return create(GetClusterResponseSchema, { cluster: { slug: req.slug, name: "a, b; c=d?#@&+$ 100% ✓" } });
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

  const interceptors = (key: string): Interceptor[] => [
    (next) => async (req) => {
      order.push("outer");
      req.header.set("authorization", `Bearer ${key}`);
      return next(req);
    },
    (next) => async (req) => {
      order.push("inner");
      req.header.set("x-asked-by", "interceptor");
      return next(req);
    },
  ];
  const reference = (key: string): Transport =>
    protocol === "grpc"
      ? createGrpcTransport({ baseUrl: srv.url, interceptors: interceptors(key) })
      : createConnectTransport({ baseUrl: srv.url, httpVersion: "2", interceptors: interceptors(key) });
  const h2 = (key: string, defaultTimeoutMs?: number): Transport =>
    createH2Transport({ baseUrl: srv.url, protocol, interceptors: interceptors(key), defaultTimeoutMs, streams: () => reference(key) });

  it("answers every call as connect-node's transport does", async () => {
    const calls: Array<[string, (t: Transport) => Promise<{ header: Headers | undefined; trailer: Headers | undefined; message: unknown }>]> = [];
    const withHeaders = async <T>(run: (opts: { onHeader: (h: Headers) => void; onTrailer: (h: Headers) => void }) => Promise<T>) => {
      let header: Headers | undefined;
      let trailer: Headers | undefined;
      const message = await run({ onHeader: (h) => (header = h), onTrailer: (t) => (trailer = t) });
      return { header, trailer, message };
    };
    const user = (t: Transport) => createClient(RuntimeService, t);
    const clusters = (t: Transport) => createClient(ClusterService, t);
    calls.push(["hostname", (t) => withHeaders((o) => user(t).getHostname({}, o))]);
    for (const slug of ["ok", "missing", "metadata", "crash", "not a slug!"]) {
      calls.push([`getCluster ${slug}`, (t) => withHeaders((o) => clusters(t).getCluster({ slug }, o))]);
    }
    calls.push(["resolve as a user", (t) => withHeaders((o) => clusters(t).resolveClusters({ teamId: "t", slugs: ["a"] }, o))]);
    calls.push(["unmounted service", (t) => withHeaders((o) => createClient(JobService, t).getJob({ jobId: "j" }, o))]);
    calls.push(["deadline", (t) => withHeaders((o) => clusters(t).getCluster({ slug: "slow" }, { ...o, timeoutMs: 100 }))]);
    calls.push(["aborted before", (t) => withHeaders((o) => clusters(t).getCluster({ slug: "x" }, { ...o, signal: AbortSignal.abort() }))]);
    calls.push([
      "aborted during",
      (t) => withHeaders((o) => clusters(t).getCluster({ slug: "hang" }, { ...o, signal: AbortSignal.timeout(50) })),
    ]);

    // A deadline or an abort racing the server's refusal of an unknown key (which the failed-key
    // throttle may hold back) ends either way, so those two calls are compared with valid keys only.
    const timed = new Set(["deadline", "aborted during"]);
    for (const [name, call] of calls) {
      for (const key of [KEY, TEST_SERVICE_KEY, "corral_nope_0123456789abcdef0123"]) {
        if (timed.has(name) && key.startsWith("corral_nope")) continue;
        const want = await outcome(() => call(reference(key)));
        order.length = 0;
        seen.length = 0;
        const got = await outcome(() => call(h2(key)));
        expect({ name, key, ...got }).toEqual({ name, key, ...want });
        expect(order).toEqual(order.length === 0 ? [] : ["outer", "inner"]);
        if (seen.length > 0) expect(seen).toEqual(["interceptor"]);
      }
    }
    // The cases above did reach the server and come back with what they should.
    const ok = await outcome(() => withHeaders((o) => user(h2(KEY)).getHostname({}, o)));
    expect(ok).toMatchObject({ ok: { hostname: "team-7" }, header: { "x-answered-by": "test" }, trailer: { "x-trailing": "yes" } });
    const invalid = await outcome(() => withHeaders((o) => clusters(h2(KEY)).getCluster({ slug: "not a slug!" }, o)));
    expect(invalid).toMatchObject({ code: "InvalidArgument" });
    expect((invalid as { details: string[] }).details.length).toBeGreaterThan(0);
  });

  it("takes the transport's default deadline, a call's own over it, and none when a call sets 0", async () => {
    const clusters = createClient(ClusterService, h2(KEY, 100));
    await expect(clusters.getCluster({ slug: "slow" })).rejects.toMatchObject({ code: Code.DeadlineExceeded });
    await expect(clusters.getCluster({ slug: "x" }, { timeoutMs: 5_000 })).resolves.toBeDefined();
    const ac = new AbortController();
    const call = clusters.getCluster({ slug: "hang" }, { timeoutMs: 0, signal: ac.signal });
    setTimeout(() => ac.abort(), 300);
    await expect(call).rejects.toMatchObject({ code: Code.Canceled });
  });

  it("sends many calls at once over one session", async () => {
    const internal = createClient(ClusterService, h2(TEST_SERVICE_KEY, 7_000));
    const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => internal.resolveClusters({ teamId: "t", slugs: [`s${i}`] })));
    expect(answers.map((a) => a.clusters[0]!.id)).toEqual(Array.from({ length: 300 }, (_, i) => `id-s${i}`));
  });
});
