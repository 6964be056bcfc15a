// The stream fast path must answer every streaming gRPC call exactly as connect-node does: the same
// raw HTTP/2 requests go to a server with the fast path and to one without, and the answers
// (status, headers, body, trailers) are compared.
import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { TaskBrokerService, WorkRequestSchema, WorkResponseSchema, type WorkRequest } from "@corral/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mount, NotFoundError, requireTeam } from "./index.js";
import { envelope, sendRawHttp2 as send, startTestServer, type TestServer } from "./testing/index.js";

const KEY = "corral_abc_0123456789abcdef0123";

const hello = (runnerId: string) => toBinary(WorkRequestSchema, create(WorkRequestSchema, { message: { case: "hello", value: { runnerId, slots: 1 } } }));
const heartbeat = toBinary(WorkRequestSchema, create(WorkRequestSchema, { message: { case: "heartbeat", value: {} } }));

let markStarted: () => void = () => {};
const started = new Promise<void>((resolve) => (markStarted = resolve));
let waiting: (reason: unknown) => void = () => {};

describe("stream fast path", () => {
  let fast: TestServer;
  let reference: TestServer;
  beforeAll(async () => {
    const mounts = [
      mount(TaskBrokerService, {
        // Answers each Hello with a Welcome naming the runner and each other message with an empty
        // one; some runner ids fail; "wait" waits until the call's signal aborts.
        async *work(requests: AsyncIterable<WorkRequest>, ctx) {
          const team = requireTeam(ctx);
          ctx.responseHeader.set("x-answered-by", "handler");
          for await (const r of requests) {
            if (r.message.case === "hello") {
              const id = r.message.value.runnerId;
              if (id === "missing") throw new NotFoundError("runner", id);
              if (id === "boom") throw new Error("secret internals");
              if (id === "wait") {
                markStarted();
                waiting(await new Promise((resolve) => ctx.signal.addEventListener("abort", () => resolve(ctx.signal.reason))));
                return;
              }
              yield create(WorkResponseSchema, { message: { case: "welcome", value: { sessionId: `${team}/${id}` } } });
            } else {
              yield create(WorkResponseSchema, { message: { case: "welcome", value: {} } });
            }
          }
          ctx.responseTrailer.set("x-trailing", "yes");
        },
      }),
    ];
    const keys = { [KEY]: { kind: "user" as const, teamId: "team-1", keyId: "abc" } };
    fast = await startTestServer({ mounts, keys, readMaxBytes: 1024 });
    reference = await startTestServer({ mounts, keys, readMaxBytes: 1024, streamFastPath: false });
  });
  afterAll(async () => {
    await fast.close();
    await reference.close();
  });

  const work = "/corral.broker.v1.TaskBrokerService/Work";
  const grpc = { "content-type": "application/grpc", te: "trailers", authorization: `Bearer ${KEY}` };
  /** Bytes that are not a WorkRequest: field 1 (a message) with a length past the end. */
  const malformed = Uint8Array.from([0x0a, 0x7f, 0x61]);
  const cases: [string, Record<string, string>, Uint8Array][] = [
    ["several messages answered, with handler headers and trailers", grpc, Buffer.concat([envelope(hello("r1")), envelope(heartbeat), envelope(heartbeat)])],
    ["an empty stream", grpc, new Uint8Array()],
    ["application/grpc+proto", { ...grpc, "content-type": "application/grpc+proto" }, envelope(hello("r1"))],
    ["no key", { "content-type": "application/grpc", te: "trailers" }, envelope(hello("r1"))],
    ["a field that fails validation", grpc, envelope(hello(""))],
    ["a failing message after an answered one", grpc, Buffer.concat([envelope(hello("r1")), envelope(hello(""))])],
    ["a domain error", grpc, Buffer.concat([envelope(hello("r1")), envelope(hello("missing"))])],
    ["an internal error", grpc, envelope(hello("boom"))],
    ["malformed protobuf", grpc, envelope(malformed)],
    ["a message over readMaxBytes", grpc, envelope(hello("a".repeat(2000)))],
    ["an incomplete envelope", grpc, envelope(hello("r1")).subarray(0, 7)],
    ["a compressed message without grpc-encoding", grpc, envelope(gzipSync(hello("r1")), 1)],
    ["a malformed timeout", { ...grpc, "grpc-timeout": "soon" }, envelope(hello("r1"))],
    ["a deadline", { ...grpc, "grpc-timeout": "5S" }, envelope(hello("r1"))],
    ["a gzip message (not taken)", { ...grpc, "grpc-encoding": "gzip" }, envelope(gzipSync(hello("r1")), 1)],
    ["gRPC-Web (not taken)", { "content-type": "application/grpc-web+proto", authorization: `Bearer ${KEY}` }, envelope(hello("r1"))],
    ["a Connect stream (not taken)", { "content-type": "application/connect+proto", authorization: `Bearer ${KEY}` }, envelope(hello("r1"))],
  ];

  it.each(cases)("%s: answered as connect-node answers", async (_name, headers, body) => {
    const [a, b] = await Promise.all([send(fast.url, work, headers, body), send(reference.url, work, headers, body)]);
    expect(a).toEqual(b);
  });

  it("answers as a client expects", async () => {
    const ok = await send(fast.url, work, grpc, Buffer.concat([envelope(hello("r1")), envelope(heartbeat)]));
    expect(ok).toMatchObject({ status: 200, headers: { "x-answered-by": "handler", "x-request-id": "(set)" }, trailers: { "grpc-status": "0", "x-trailing": "yes" } });
    expect(Buffer.from(ok.body, "base64").length).toBeGreaterThan(10);
    const invalid = await send(fast.url, work, grpc, envelope(hello("")));
    expect(invalid.trailers["grpc-status"]).toBe(String(Code.InvalidArgument));
    expect(decodeURIComponent(invalid.trailers["grpc-message"] ?? "")).toContain("runner_id");
  });

  it("aborts the handler's signal when the client resets the stream", async () => {
    const reason = await new Promise<unknown>((resolve, reject) => {
      waiting = resolve;
      const session = http2.connect(fast.url);
      session.on("error", reject);
      const req = session.request({ ":method": "POST", ":path": work, ...grpc });
      req.on("error", () => {});
      req.write(envelope(hello("wait")));
      void started.then(() => {
        req.close(http2.constants.NGHTTP2_CANCEL);
        setTimeout(() => session.close(), 100);
      });
    });
    expect(reason).toMatchObject({ code: Code.Canceled });
  });
});
