// Gateway routes over the three services as separate processes: a team routes task identifiers
// to an HTTP server this test starts on 127.0.0.1 (allowed by address, as an operator would),
// and gateways (the SDK's, and `corral gateway` in its own process) execute the tasks by calling it.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Code } from "@connectrpc/connect";
import { RouteService } from "@corral/proto";
import { createClient } from "@connectrpc/connect";
import { createSdkLogger, decodeOutput, NotFoundError, rawTask, TaskFailedError, type Client, type GatewayRunner } from "@corral/sdk";
import { TaskState } from "@corral/proto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runCli, spawnCli } from "../support/cli.js";
import { createRoutingTransport, suiteClient } from "../support/clients.js";
import { startSuite, type Suite } from "../support/suite.js";

/** Mindtrace's EchoWorker behind HTTP: `{ message, delay }` in, `{ status, output: { echoed } }` out. */
function echoAnswer(body: string): string {
  const input = JSON.parse(body) as { message: string };
  return JSON.stringify({ status: "completed", output: { echoed: input.message } });
}

describe("gateway routes over separate service processes", { timeout: 180_000 }, () => {
  let suite: Suite;
  let client: Client;
  let server: http.Server;
  let port: number;
  const calls = new Map<string, number>();
  const hung: http.ServerResponse[] = [];
  const gateways: GatewayRunner[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const path = req.url ?? "";
        calls.set(path, (calls.get(path) ?? 0) + 1);
        const body = Buffer.concat(chunks).toString("utf8");
        if (path === "/echo/run") {
          res.writeHead(200, { "content-type": "application/json" });
          res.end(echoAnswer(body));
        } else if (path === "/broken") {
          res.writeHead(500, { "content-type": "text/plain" });
          res.end("the model server is down");
        } else if (path === "/hang") {
          hung.push(res);
        } else {
          res.writeHead(404);
          res.end();
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
    suite = await startSuite({ label: "e2e-gateway" });
    client = suiteClient(suite);
  });
  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((g) => g.stop()));
  });
  afterAll(async () => {
    for (const r of hung) r.destroy();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await suite?.stop();
  });

  const url = (path: string) => `http://127.0.0.1:${port}${path}`;

  /** A gateway of the SDK on the suite (gRPC for its Work stream, Connect for the routes), started. */
  async function startGateway(cluster: string, allow: string[], apiKey = suite.apiKey): Promise<GatewayRunner> {
    const gateway = suiteClient(suite, apiKey).gateway({
      cluster,
      allow,
      concurrency: 8,
      refreshMs: 200,
      logger: createSdkLogger("e2e-gateway", process.env.CORRAL_LOG_LEVEL ?? "error"),
      drainGraceMs: 2_000,
      ackTimeoutMs: 2_000,
      transport: createRoutingTransport(suite, { apiKey, protocol: "grpc" }),
    });
    gateways.push(gateway);
    const welcomed = new Promise<void>((resolve) => gateway.runner.on("welcome", resolve));
    void gateway.runForever({ handleSignals: false });
    await welcomed;
    return gateway;
  }

  it("executes 50 tasks through a route; each output is the server's answer", async () => {
    const cluster = await client.clusters().create("gateway echo");
    await client.routes().create({ identifier: "echo_job@v1.0", url: url("/echo/run") });
    await startGateway(cluster.slug, [`127.0.0.1:${port}`]);
    const inputs = Array.from({ length: 50 }, (_, i) => ({ message: `hello ${i}`, delay: 0 }));
    const job = await client.jobs().submit("echo through the gateway", inputs.map((input) => rawTask({ name: "echo_job", version: "v1.0" }, input)), {
      cluster: cluster.slug,
    });
    await client.jobs().wait(job.id);
    const tasks = await client.jobs().tasks(job.id, { includeInput: true, includeOutput: true });
    expect(tasks).toHaveLength(50);
    expect(tasks.every((t) => t.state === TaskState.COMPUTED)).toBe(true);
    const byInput = new Map(tasks.map((t) => [new TextDecoder().decode(t.input), decodeOutput(t.output)]));
    for (const input of inputs) {
      expect(byInput.get(JSON.stringify(input))).toEqual(JSON.parse(echoAnswer(JSON.stringify(input))));
    }
    expect(calls.get("/echo/run")).toBeGreaterThanOrEqual(50);
  });

  it("retries a 500 as the route says, then fails the task with the status", async () => {
    const cluster = await client.clusters().create("gateway broken");
    await client.routes().create({ identifier: "broken@v1.0", url: url("/broken"), retry: { maxAttempts: 3, initialBackoffMs: 10, maxBackoffMs: 20 } });
    await startGateway(cluster.slug, [`127.0.0.1:${port}`]);
    const before = calls.get("/broken") ?? 0;
    const job = await client.jobs().submit("broken", rawTask({ name: "broken", version: "v1.0" }, { x: 1 }), { cluster: cluster.slug });
    const err = await client.jobs().result(job.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskFailedError);
    expect((err as TaskFailedError).error).toBe(`POST ${url("/broken")} answered HTTP 500 (after 3 calls): the model server is down`);
    expect((calls.get("/broken") ?? 0) - before).toBe(3);
  });

  it("fails a call that outlives the route's timeout", async () => {
    const cluster = await client.clusters().create("gateway slow");
    await client.routes().create({ identifier: "slow@v1.0", url: url("/hang"), timeoutMs: 300 });
    await startGateway(cluster.slug, [`127.0.0.1:${port}`]);
    const job = await client.jobs().submit("slow", rawTask({ name: "slow", version: "v1.0" }, {}), { cluster: cluster.slug });
    const err = await client.jobs().result(job.id).catch((e: unknown) => e);
    expect((err as TaskFailedError).error).toBe(`POST ${url("/hang")}: no answer within 300 ms (the route's timeout)`);
  });

  it("refuses at execution a route to a host the gateway was not allowed, saying so, without calling it", async () => {
    const cluster = await client.clusters().create("gateway refused");
    // The same server by another name: localhost is not on the list, and resolves to loopback anyway.
    await client.routes().create({ identifier: "sneaky@v1.0", url: `http://localhost:${port}/echo/run`, retry: { maxAttempts: 3 } });
    await startGateway(cluster.slug, [`127.0.0.1:${port}`]);
    const before = calls.get("/echo/run") ?? 0;
    const job = await client.jobs().submit("sneaky", rawTask({ name: "sneaky", version: "v1.0" }, { message: "x" }, { maxRetries: 2 }), { cluster: cluster.slug });
    const err = await client.jobs().result(job.id).catch((e: unknown) => e);
    expect((err as TaskFailedError).error).toBe(
      `route sneaky@v1.0 refused: the gateway may not call localhost:${port}: it is not on the allow list (the gateway's --allow list)`,
    );
    // Not retried: the same host is refused again.
    expect((err as TaskFailedError).attempt).toBe(1);
    expect(calls.get("/echo/run") ?? 0).toBe(before);
  });

  it("keeps another team's routes invisible, to its API and to its gateways", async () => {
    const other = await suite.newTeam("gateway team b");
    const b = suiteClient(suite, other.key);
    const mine = await client.routes().create({ identifier: "team-a-only@v1.0", url: url("/echo/run") });
    expect((await b.routes().all()).map((r) => r.id)).not.toContain(mine.id);
    await expect(b.routes().find(mine.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(b.routes().delete(mine.id)).rejects.toBeInstanceOf(NotFoundError);
    // Over plain Connect too, the code is NOT_FOUND.
    const raw = createClient(RouteService, createRoutingTransport(suite, { apiKey: other.key, protocol: "grpc" }));
    expect(await raw.getRoute({ id: mine.id }).then(() => undefined, (e: { code: Code }) => e.code)).toBe(Code.NotFound);

    const gatewayB = await startGateway("", ["*", `127.0.0.1:${port}`], other.key);
    expect(gatewayB.identifiers.map((i) => i.name)).not.toContain("team-a-only");
    expect((await client.routes().find(mine.id)).id).toBe(mine.id);
  });

  it("serves a route created while it runs, and stops serving a deleted one", async () => {
    const cluster = await client.clusters().create("gateway live");
    const gateway = await startGateway(cluster.slug, [`127.0.0.1:${port}`]);
    const route = await client.routes().create({ identifier: "late@v1.2", url: url("/echo/run") });
    // A v1.0 task may run on the v1.2 route (same major, older minor).
    const out = await client.jobs().submit("late", rawTask({ name: "late", version: "v1.0" }, { message: "late" }), { cluster: cluster.slug });
    expect(await client.jobs().result(out.id)).toEqual({ status: "completed", output: { echoed: "late" } });
    await client.routes().delete(route.id);
    await expect.poll(() => gateway.identifiers.some((i) => i.name === "late"), { timeout: 10_000 }).toBe(false);
  });

  it("works from the CLI: corral route create, corral gateway, corral job result", async () => {
    const registryEnv = { CORRAL_URL: suite.registry.url, CORRAL_API_KEY: suite.apiKey };
    const cluster = await client.clusters().create("gateway cli");
    const created = await runCli(["route", "create", "cli_echo@v1.0", url("/echo/run"), "-H", "X-Token: abc", "--timeout", "5s", "--attempts", "2", "--json"], {
      env: registryEnv,
    });
    expect(created.code, created.stderr).toBe(0);
    const route = JSON.parse(created.stdout) as { id: string; timeoutMs: number; retry: { maxAttempts: number } };
    expect(route).toMatchObject({ timeoutMs: 5000, retry: { maxAttempts: 2 } });
    const [listed, shown] = await Promise.all([runCli(["route", "list"], { env: registryEnv }), runCli(["route", "get", route.id], { env: registryEnv })]);
    expect(listed.stdout).toContain(`POST ${url("/echo/run")}`);
    expect(shown.stdout).toMatch(/headers:\s+X-Token/);
    expect(shown.stdout).not.toContain("abc");

    const gateway = spawnCli(["gateway", "--cluster", cluster.slug, "--allow", `127.0.0.1:${port}`, "--refresh", "1s", "--log-format", "json"], {
      env: { CORRAL_URL: suite.broker.url, CORRAL_REGISTRY_URL: suite.registry.url, CORRAL_API_KEY: suite.apiKey },
    });
    let stderr = "";
    gateway.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => gateway.once("close", (code) => resolve(code)));
    try {
      const job = await client.jobs().submit("cli echo", rawTask({ name: "cli_echo", version: "v1.0" }, { message: "from the cli", delay: 0 }), {
        cluster: cluster.slug,
      });
      await client.jobs().wait(job.id, { signal: AbortSignal.timeout(60_000) });
      const result = await runCli(["job", "result", job.id, "--json"], { env: { CORRAL_URL: suite.jobs.url, CORRAL_API_KEY: suite.apiKey } });
      expect(result.code, result.stderr).toBe(0);
      expect(JSON.parse(result.stdout)).toEqual({ status: "completed", output: { echoed: "from the cli" } });
    } finally {
      gateway.kill("SIGTERM");
    }
    expect(await exited, stderr).toBe(0);
    expect(stderr).toContain(`allowed: 127.0.0.1:${port}`);

    const bad = await runCli(["gateway", "--allow", "http://x"], { env: registryEnv });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--allow http://x");
    const deleted = await runCli(["route", "delete", route.id], { env: registryEnv });
    expect(deleted.stdout).toBe(`deleted ${route.id}\n`);
  });
});
