// executeRoute against a real HTTP server on 127.0.0.1 (allowed by address, as an operator would).
import http from "node:http";
import type { AddressInfo } from "node:net";
import { OutputEncoding } from "@corral/proto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { decodeOutput } from "../task-output.js";
import { createEgressPolicy } from "./egress-policy.js";
import { executeRoute, retryDelay, type GatewayRoute } from "./route-call.js";

interface Seen {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

describe("executeRoute", () => {
  let server: http.Server;
  let port: number;
  let seen: Seen[] = [];
  /** Answers by path; `/flaky` fails while `flakyFailures` > 0. */
  let flakyFailures = 0;
  const hung: http.ServerResponse[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        seen.push({ method: req.method!, path: req.url!, headers: req.headers, body });
        switch (req.url) {
          case "/echo/run": {
            const input = JSON.parse(body) as { message: string };
            res.writeHead(200, { "content-type": "application/json; charset=utf-8" });
            res.end(JSON.stringify({ status: "completed", output: { echoed: input.message } }));
            return;
          }
          case "/text":
            res.writeHead(200, { "content-type": "text/plain" });
            res.end("plain answer");
            return;
          case "/bytes":
            res.writeHead(200, { "content-type": "application/octet-stream" });
            res.end(Buffer.from([0, 1, 2, 255]));
            return;
          case "/empty":
            res.writeHead(204);
            res.end();
            return;
          case "/flaky":
            if (flakyFailures-- > 0) {
              res.writeHead(503, { "content-type": "text/plain" });
              res.end("busy");
            return;
            }
            res.writeHead(200, { "content-type": "application/json" });
            res.end(JSON.stringify({ ok: true }));
            return;
          case "/broken":
            res.writeHead(500, { "content-type": "text/plain" });
            res.end(`database\nexploded ${"x".repeat(2000)}`);
            return;
          case "/missing":
            res.writeHead(404);
            res.end("no such thing");
            return;
          case "/redirect":
            res.writeHead(302, { location: "http://169.254.169.254/latest/meta-data" });
            res.end();
            return;
          case "/not-json":
            res.writeHead(200, { "content-type": "application/json" });
            res.end("{oops");
            return;
          case "/big":
            res.writeHead(200, { "content-type": "application/json" });
            res.end(JSON.stringify("y".repeat(5000)));
            return;
          case "/hang":
            hung.push(res);
            return;
          default:
            res.writeHead(400);
            res.end();
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    for (const r of hung) r.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  beforeEach(() => {
    seen = [];
  });

  const route = (path: string, over: Partial<GatewayRoute> = {}): GatewayRoute => ({
    id: "r",
    name: "echo_job",
    version: "v1.0",
    method: "POST",
    url: `http://127.0.0.1:${port}${path}`,
    headers: {},
    timeoutMs: 5_000,
    maxAttempts: 1,
    initialBackoffMs: 1,
    maxBackoffMs: 4,
    ...over,
  });
  const allowed = () => createEgressPolicy([`127.0.0.1:${port}`]);
  const run = (r: GatewayRoute, input: unknown, policy = allowed(), signal = new AbortController().signal) =>
    executeRoute(r, Buffer.from(JSON.stringify(input)), { policy, signal, maxOutputBytes: 1024 });

  it("POSTs the input as JSON with the route's headers and stores a JSON answer as the output", async () => {
    const outcome = await run(route("/echo/run", { headers: { Authorization: "Bearer s3cret", "X-Team": "a" } }), { message: "hi", delay: 0 });
    expect(outcome.kind).toBe("completed");
    if (outcome.kind !== "completed") return;
    expect(outcome.output?.encoding).toBe(OutputEncoding.JSON);
    expect(decodeOutput(outcome.output)).toEqual({ status: "completed", output: { echoed: "hi" } });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: "POST", path: "/echo/run", body: JSON.stringify({ message: "hi", delay: 0 }) });
    expect(seen[0]!.headers).toMatchObject({ "content-type": "application/json", authorization: "Bearer s3cret", "x-team": "a" });
  });

  it("stores text as a JSON string, other types as bytes, and no output for an empty answer", async () => {
    const text = await run(route("/text", { method: "PUT" }), 1);
    expect(text.kind === "completed" && decodeOutput(text.output)).toBe("plain answer");
    const bytes = await run(route("/bytes"), 1);
    expect(bytes.kind === "completed" && bytes.output?.encoding).toBe(OutputEncoding.BYTES);
    expect(bytes.kind === "completed" && [...(decodeOutput(bytes.output) as Uint8Array)]).toEqual([0, 1, 2, 255]);
    const empty = await run(route("/empty", { method: "GET" }), 1);
    expect(empty).toMatchObject({ kind: "completed", output: undefined });
    expect(seen.map((s) => [s.method, s.body])).toEqual([["PUT", "1"], ["POST", "1"], ["GET", ""]]);
  });

  it("calls again after a 5xx within the attempt, as the retry policy says", async () => {
    flakyFailures = 2;
    const outcome = await run(route("/flaky", { maxAttempts: 3 }), {});
    expect(outcome.kind === "completed" && decodeOutput(outcome.output)).toEqual({ ok: true });
    expect(seen).toHaveLength(3);
  });

  it("fails with the status and a one-line excerpt once the 5xx retries are spent", async () => {
    const outcome = await run(route("/broken", { maxAttempts: 3 }), {});
    expect(outcome).toMatchObject({ kind: "failed", unrecoverable: false, countsAsRetry: true });
    const error = outcome.kind === "failed" ? outcome.error : "";
    expect(error).toMatch(new RegExp(`^POST http://127\\.0\\.0\\.1:${port}/broken answered HTTP 500 \\(after 3 calls\\): database exploded x+…$`));
    expect(error.length).toBeLessThan(700);
    expect(seen).toHaveLength(3);
  });

  it("does not call again after a 4xx", async () => {
    const outcome = await run(route("/missing", { maxAttempts: 5 }), {});
    expect(outcome.kind === "failed" && outcome.error).toMatch(/answered HTTP 404: no such thing$/);
    expect(seen).toHaveLength(1);
  });

  it("times out each call at the route's timeout and retries it", async () => {
    const outcome = await run(route("/hang", { timeoutMs: 100, maxAttempts: 2 }), {});
    expect(outcome.kind === "failed" && outcome.error).toMatch(/\/hang: no answer within 100 ms \(the route's timeout\) \(after 2 calls\)$/);
    expect(seen).toHaveLength(2);
  });

  it("follows no redirect: a 3xx fails the task", async () => {
    const outcome = await run(route("/redirect"), {});
    expect(outcome.kind === "failed" && outcome.error).toMatch(/answered HTTP 302 \(redirects are not followed\)/);
  });

  it("refuses a host not on the allow list before calling it, not to be retried", async () => {
    const outcome = await run(route("/echo/run", { maxAttempts: 3 }), { message: "x" }, createEgressPolicy(["api.example.com"]));
    expect(outcome).toMatchObject({ kind: "failed", unrecoverable: true });
    expect(outcome.kind === "failed" && outcome.error).toBe(
      `route echo_job@v1.0 refused: the gateway may not call 127.0.0.1:${port}: it is not on the allow list (the gateway's --allow list)`,
    );
    expect(seen).toHaveLength(0);
  });

  it("refuses a name that resolves to a loopback address unless the address is allowed", async () => {
    const outcome = await run(route("/echo/run", { url: `http://localhost:${port}/echo/run` }), { message: "x" }, createEgressPolicy([`localhost:${port}`]));
    expect(outcome.kind === "failed" && outcome.error).toMatch(/it resolves to (127\.0\.0\.1|::1), a loopback address, which is refused unless allowed by address/);
    expect(seen).toHaveLength(0);
  });

  it("fails on an answer over the output limit and on JSON that is not JSON", async () => {
    expect(await run(route("/big"), {})).toMatchObject({ kind: "failed", unrecoverable: true, error: expect.stringMatching(/over 1024 bytes.*CORRAL_MAX_OUTPUT_BYTES/) });
    expect(await run(route("/not-json"), {})).toMatchObject({ kind: "failed", error: expect.stringMatching(/Content-Type application\/json but its body is not JSON/) });
  });

  it("stops a call when the task is canceled", async () => {
    const abort = new AbortController();
    const pending = run(route("/hang", { timeoutMs: 60_000 }), {}, allowed(), abort.signal);
    await expect.poll(() => seen.length).toBe(1);
    abort.abort(new Error("job canceled"));
    expect(await pending).toMatchObject({ kind: "failed", error: "canceled: job canceled" });
  });

  it("doubles the backoff up to its cap", () => {
    const r = { initialBackoffMs: 100, maxBackoffMs: 350 };
    expect([1, 2, 3, 4].map((n) => retryDelay(r, n))).toEqual([100, 200, 350, 350]);
  });
});
