// The fast path must answer every unary call exactly as connect-node does: the same requests, as
// raw HTTP/2 bytes, go to a server with the fast path and to one without, and the answers (status,
// headers, body, trailers) are compared.
import http from "node:http";
import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { create, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import {
  ClusterService,
  GetClusterRequestSchema,
  GetClusterResponseSchema,
  GetHostnameRequestSchema,
  GetHostnameResponseSchema,
  GetRuntimeConfigResponseSchema,
  RuntimeService,
} from "@corral/proto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mount, NotFoundError, requireTeam } from "./index.js";
import { envelope, sendRawHttp2 as send, startTestServer, volatileHeaders, type RawAnswer, type TestServer } from "./testing/index.js";

const KEY = "corral_abc_0123456789abcdef0123";

/** The same over HTTP/1.1 (Connect's binary unary calls work there too). */
function sendH1(url: string, path: string, headers: Record<string, string>, body: Uint8Array): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${path}`, { method: "POST", headers, agent: false }, (res) => {
      const answer: RawAnswer = { status: res.statusCode ?? 0, headers: {}, body: "", trailers: {} };
      for (const [k, v] of Object.entries(res.headers)) {
        if (!volatileHeaders.has(k) && k !== "connection" && k !== "keep-alive") answer.headers[k] = String(v);
      }
      if (res.headers["x-request-id"] !== undefined) answer.headers["x-request-id"] = "(set)";
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        answer.body = Buffer.concat(chunks).toString("base64");
        resolve(answer);
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

const bin = <D extends DescMessage>(schema: D, init: Partial<MessageShape<D>>) => toBinary(schema, create(schema, init as never));

let markStarted: () => void = () => {};
const started = new Promise<void>((resolve) => (markStarted = resolve));
let waiting: (reason: unknown) => void = () => {};

describe("unary fast path", () => {
  let fast: TestServer;
  let reference: TestServer;
  beforeAll(async () => {
    const mounts = [
      mount(RuntimeService, {
        // Waits until the call's signal aborts and reports the reason.
        getRuntimeConfig: async (_req, ctx) => {
          markStarted();
          const reason = await new Promise((resolve) => ctx.signal.addEventListener("abort", () => resolve(ctx.signal.reason)));
          waiting(reason);
          return create(GetRuntimeConfigResponseSchema, {});
        },
        getHostname: (_req, ctx) => {
          ctx.responseHeader.set("x-answered-by", "handler");
          ctx.responseTrailer.set("x-trailing", "yes");
          return create(GetHostnameResponseSchema, { hostname: requireTeam(ctx) });
        },
      }),
      mount(ClusterService, {
        getCluster(req) {
          if (req.slug === "missing") throw new NotFoundError("cluster", req.slug);
          if (req.slug === "boom") throw new Error("secret internals");
          return create(GetClusterResponseSchema, {});
        },
      }),
    ];
    const keys = { [KEY]: { kind: "user" as const, teamId: "team-1", keyId: "abc" } };
    fast = await startTestServer({ mounts, keys, readMaxBytes: 1024 });
    reference = await startTestServer({ mounts, keys, readMaxBytes: 1024, unaryFastPath: false });
  });
  afterAll(async () => {
    await fast.close();
    await reference.close();
  });

  const auth = { authorization: `Bearer ${KEY}` };
  const hostname = "/corral.registry.v1.RuntimeService/GetHostname";
  const getCluster = "/corral.registry.v1.ClusterService/GetCluster";
  const cluster = (slug: string) => bin(GetClusterRequestSchema, { slug });
  const big = bin(GetClusterRequestSchema, { slug: "a".repeat(2000) });
  /** Bytes that are not a GetClusterRequest: field 1 (a string) with a length past the end. */
  const malformed = Uint8Array.from([0x0a, 0x7f, 0x61]);

  const cases: [string, string, Record<string, string>, Uint8Array][] = [];
  const protocols: [string, Record<string, string>, (b: Uint8Array) => Uint8Array][] = [
    ["connect", { "content-type": "application/proto", "connect-protocol-version": "1" }, (b) => b],
    ["grpc", { "content-type": "application/grpc", te: "trailers" }, (b) => envelope(b)],
  ];
  for (const [name, headers, wrap] of protocols) {
    cases.push(
      [`${name}: an answer with handler headers and trailers`, hostname, { ...headers, ...auth }, wrap(bin(GetHostnameRequestSchema, {}))],
      [`${name}: no key`, hostname, headers, wrap(bin(GetHostnameRequestSchema, {}))],
      [`${name}: a field that fails validation`, getCluster, { ...headers, ...auth }, wrap(cluster("not a slug!"))],
      [`${name}: a domain error`, getCluster, { ...headers, ...auth }, wrap(cluster("missing"))],
      [`${name}: an internal error`, getCluster, { ...headers, ...auth }, wrap(cluster("boom"))],
      [`${name}: malformed protobuf`, getCluster, { ...headers, ...auth }, wrap(malformed)],
      [`${name}: a message over readMaxBytes`, getCluster, { ...headers, ...auth }, wrap(big)],
      [`${name}: an unknown method`, "/corral.registry.v1.ClusterService/Nope", { ...headers, ...auth }, wrap(cluster("x"))],
    );
  }
  cases.push(
    ["connect: a malformed timeout", getCluster, { ...protocols[0]![1], ...auth, "connect-timeout-ms": "soon" }, cluster("ok")],
    ["grpc: a malformed timeout", getCluster, { ...protocols[1]![1], ...auth, "grpc-timeout": "soon" }, envelope(cluster("ok"))],
    ["grpc: application/grpc+proto", getCluster, { ...protocols[1]![1], ...auth, "content-type": "application/grpc+proto" }, envelope(cluster("ok"))],
    ["connect: JSON (not taken by the fast path)", getCluster, { "content-type": "application/json", ...auth }, Buffer.from('{"slug":"ok"}')],
    ["connect: a gzip body (not taken)", getCluster, { ...protocols[0]![1], ...auth, "content-encoding": "gzip" }, gzipSync(cluster("ok"))],
    ["grpc: a gzip message (not taken)", getCluster, { ...protocols[1]![1], ...auth, "grpc-encoding": "gzip" }, envelope(gzipSync(cluster("ok")), 1)],
    ["grpc: no message", getCluster, { ...protocols[1]![1], ...auth }, new Uint8Array()],
    ["grpc: two messages", getCluster, { ...protocols[1]![1], ...auth }, Buffer.concat([envelope(cluster("a")), envelope(cluster("b"))])],
    ["grpc: a deadline", getCluster, { ...protocols[1]![1], ...auth, "grpc-timeout": "5S" }, envelope(cluster("ok"))],
    ["connect: a deadline", getCluster, { ...protocols[0]![1], ...auth, "connect-timeout-ms": "5000" }, cluster("ok")],
  );

  it.each(cases)("%s: answered as connect-node answers", async (_name, path, headers, body) => {
    const [a, b] = await Promise.all([send(fast.url, path, headers, body), send(reference.url, path, headers, body)]);
    expect(a).toEqual(b);
  });

  it.each(cases.filter(([name]) => name.startsWith("connect:")))("%s, over HTTP/1.1: answered as connect-node answers", async (_name, path, headers, body) => {
    const [a, b] = await Promise.all([sendH1(fast.url, path, headers, body), sendH1(reference.url, path, headers, body)]);
    expect(a).toEqual(b);
  });

  it("aborts the handler's signal when the client resets the call", async () => {
    const reason = await new Promise<unknown>((resolve, reject) => {
      waiting = resolve;
      const session = http2.connect(fast.url);
      session.on("error", reject);
      const req = session.request({ ":method": "POST", ":path": "/corral.registry.v1.RuntimeService/GetRuntimeConfig", ...protocols[0]![1], ...auth });
      req.on("error", () => {});
      req.end(new Uint8Array());
      // Reset once the handler runs.
      void started.then(() => {
        req.close(http2.constants.NGHTTP2_CANCEL);
        setTimeout(() => session.close(), 100);
      });
    });
    expect(reason).toMatchObject({ code: Code.Canceled });
  });

  it("answers the cases above as a client expects", async () => {
    const ok = await send(fast.url, hostname, { ...protocols[0]![1], ...auth }, bin(GetHostnameRequestSchema, {}));
    expect(ok).toMatchObject({ status: 200, headers: { "x-answered-by": "handler", "trailer-x-trailing": "yes", "x-request-id": "(set)" } });
    const invalid = await send(fast.url, getCluster, { ...protocols[1]![1], ...auth }, envelope(cluster("not a slug!")));
    expect(invalid.trailers["grpc-status"] ?? invalid.headers["grpc-status"]).toBe("3");
    expect(decodeURIComponent(invalid.trailers["grpc-message"] ?? invalid.headers["grpc-message"] ?? "")).toContain("slug");
    const parse = await send(fast.url, getCluster, { ...protocols[0]![1], ...auth }, malformed);
    expect(parse.status).toBe(400);
    expect(JSON.parse(Buffer.from(parse.body, "base64").toString())).toMatchObject({ code: "invalid_argument" });
  });
});
