// Idle, slow and vanished connections: sockets that never speak are closed by the server while
// health still answers, an HTTP/1.1 client whose headers or body trickle is cut off, an HTTP/2
// session with no streams is closed when idle but one holding an open, silent server stream is not
// (its peer answers the server's PINGs), one whose peer vanished (PINGs unanswered) is closed, and
// one address cannot hold more than its share of connections.
import { execFileSync } from "node:child_process";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { toBinary, create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckRequestSchema, HealthCheckResponse_ServingStatus } from "@corral/proto/grpc";
import { createTestDatabase, type TestDatabase } from "@corral/server-kit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomServiceKey, spawnService, type ServiceProcess } from "../support/processes.js";

const WANTED_FLOOD = 5_000;
const FLOOD_ADDRESSES = ["127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14", "127.0.0.15"];
const PROBE_ADDRESS = "127.0.0.2";

interface Idle {
  socket: net.Socket;
  closed: Promise<void>;
}

/** Opens a TCP socket that never sends anything; resolves once connected. */
function idleSocket(port: number, localAddress: string): Promise<Idle> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: "127.0.0.1", localAddress });
    const closed = new Promise<void>((r) => socket.once("close", () => r()));
    socket.once("connect", () => {
      socket.on("error", () => {});
      resolve({ socket, closed });
    });
    socket.once("error", reject);
  });
}

function healthz(port: number, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/healthz", localAddress, agent: false }, (res) => {
      res.resume();
      res.once("end", () => resolve(res.statusCode ?? 0));
    });
    req.once("error", reject);
  });
}

async function grpcHealth(url: string, localAddress: string): Promise<HealthCheckResponse_ServingStatus> {
  const transport = createGrpcTransport({
    baseUrl: url,
    nodeOptions: { createConnection: (authority: URL) => net.connect({ host: authority.hostname, port: Number(authority.port), localAddress }) },
  });
  const res = await createClient(Health, transport).check({ service: "" }, { timeoutMs: 30_000 });
  return res.status;
}

/** How many sockets this process may still open, leaving room for everything else it does. */
function floodSize(): number {
  const limit = Number(execFileSync("sh", ["-c", "ulimit -n"]).toString().trim());
  const room = Number.isFinite(limit) ? limit - 1_000 : WANTED_FLOOD;
  if (room < WANTED_FLOOD) console.warn(`ulimit -n is ${limit}: opening ${room} idle sockets instead of ${WANTED_FLOOD}`);
  return Math.max(100, Math.min(WANTED_FLOOD, room));
}

const grpcFrame = (body: Uint8Array) => {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
};

/** Opens Health.Watch on `session`; resolves once its first answer came. It then stays open and silent, as WatchJob and Work do. */
async function openHealthWatch(session: http2.ClientHttp2Session): Promise<http2.ClientHttp2Stream> {
  const watch = session.request({
    ":method": "POST",
    ":path": "/grpc.health.v1.Health/Watch",
    "content-type": "application/grpc",
    te: "trailers",
  });
  watch.on("error", () => {});
  watch.end(grpcFrame(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: "" }))));
  await new Promise<void>((resolve) => watch.once("data", () => resolve()));
  return watch;
}

describe("connections", () => {
  let database: TestDatabase;
  let service: ServiceProcess;
  let shareService: ServiceProcess | undefined;

  beforeAll(async () => {
    database = await createTestDatabase("connections");
    service = await spawnService({
      name: "cluster-registry",
      entry: "services/cluster-registry/src/main.ts",
      env: {
        DATABASE_URL: database.url,
        CORRAL_SERVICE_KEY: randomServiceKey(),
        CORRAL_FIRST_BYTE_TIMEOUT: "4s",
        CORRAL_HEADERS_TIMEOUT: "1s",
        CORRAL_REQUEST_TIMEOUT: "2s",
        // The deadline is what this file tests on bodies; the minimum rate has its own test in server-kit.
        CORRAL_MIN_BODY_BYTES_PER_SECOND: "0",
        CORRAL_HTTP2_IDLE_TIMEOUT: "1s",
        CORRAL_HTTP2_PING_INTERVAL: "500ms",
        CORRAL_HTTP2_PING_TIMEOUT: "1s",
        // The flood comes from five loopback addresses, a thousand from each.
        CORRAL_MAX_CONNECTIONS_PER_ADDRESS: "1100",
      },
    });
  }, 90_000);
  afterAll(async () => {
    await service?.stop(5_000);
    await shareService?.stop(5_000);
    await database?.drop();
  });

  it("closes sockets that never speak, and answers health from another address while they sit there", async () => {
    const count = floodSize();
    const flood: Idle[] = [];
    // In batches, so the listen backlog never overflows (a dropped SYN waits a second to retry).
    for (let i = 0; i < count; i += 250) {
      const batch = Array.from({ length: Math.min(250, count - i) }, (_, j) =>
        idleSocket(service.port, FLOOD_ADDRESSES[(i + j) % FLOOD_ADDRESSES.length]!),
      );
      flood.push(...(await Promise.all(batch)));
    }
    try {
      expect(await healthz(service.port, PROBE_ADDRESS)).toBe(200);
      expect(await grpcHealth(service.url, PROBE_ADDRESS)).toBe(HealthCheckResponse_ServingStatus.SERVING);
      const open = flood.filter((f) => !f.socket.closed).length;
      console.info(`health answered with ${open} of ${count} idle sockets still open`);
      // The server closes every one of them; none was sent a byte or closed by this side.
      await Promise.all(flood.map((f) => f.closed));
    } finally {
      for (const f of flood) f.socket.destroy();
    }
  }, 120_000);

  it("closes an HTTP/1.1 client whose headers trickle in", async () => {
    const { socket, closed } = await idleSocket(service.port, "127.0.0.1");
    let answer = "";
    socket.on("data", (d: Buffer) => (answer += d.toString()));
    socket.write("GET /healthz HTTP/1.1\r\nHost: corral\r\n");
    // Every write is activity, so only a deadline on the whole header block ends this.
    const trickle = setInterval(() => socket.write("X-Slow: 1\r\n"), 100);
    try {
      await closed;
    } finally {
      clearInterval(trickle);
    }
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  }, 60_000);

  it("ends an HTTP/1.1 request whose body trickles past the request deadline", async () => {
    const { socket, closed } = await idleSocket(service.port, "127.0.0.1");
    let answer = "";
    socket.on("data", (d: Buffer) => (answer += d.toString()));
    // Connect's unary protocol reads the whole body before it answers.
    socket.write(
      "POST /grpc.health.v1.Health/Check HTTP/1.1\r\nHost: corral\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
    );
    const trickle = setInterval(() => socket.write("x"), 100);
    try {
      await closed;
    } finally {
      clearInterval(trickle);
    }
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  }, 60_000);

  it("closes an idle HTTP/2 session without streams, but not one with an open server stream", async () => {
    const watching = http2.connect(service.url);
    watching.on("error", () => {});
    const watch = await openHealthWatch(watching);
    try {
      // Opened after the watch's last frame: once it is closed for idleness, so would the watching
      // session have been, were its open stream not counted.
      const idle = http2.connect(service.url);
      idle.on("error", () => {});
      await new Promise<void>((resolve) => idle.once("close", () => resolve()));
      // Several of the server's PINGs (every 500 ms, 1 s to answer) come and are answered meanwhile.
      let pings = 0;
      watching.on("ping", () => pings++);
      await new Promise((r) => setTimeout(r, 2_500));
      expect(pings).toBeGreaterThanOrEqual(2);
      expect(watching.closed).toBe(false);
      expect(watch.closed).toBe(false);
      // The watching session still carries new calls.
      const check = watching.request({
        ":method": "POST",
        ":path": "/grpc.health.v1.Health/Check",
        "content-type": "application/grpc",
        te: "trailers",
      });
      check.end(grpcFrame(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: "" }))));
      const status = await new Promise<string | undefined>((resolve, reject) => {
        check.on("trailers", (t) => resolve(String(t["grpc-status"])));
        check.once("error", reject);
        check.resume();
      });
      expect(status).toBe("0");
    } finally {
      watch.close();
      watching.close();
    }
  }, 60_000);

  it("closes an HTTP/2 session with an open stream once its peer stops answering PINGs", async () => {
    // A relay between client and service that, once told, passes nothing either way and keeps both
    // sockets open: the client's machine vanished without closing its connection.
    let blackHole = false;
    let upstreamClosed!: Promise<void>;
    const relay = net.createServer((client) => {
      const upstream = net.connect({ port: service.port, host: "127.0.0.1" });
      upstreamClosed = new Promise<void>((r) => upstream.once("close", () => r()));
      client.on("data", (d) => void (blackHole || upstream.write(d)));
      upstream.on("data", (d) => void (blackHole || client.write(d)));
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
      upstream.on("close", () => client.destroy());
    });
    await new Promise<void>((r) => relay.listen(0, "127.0.0.1", () => r()));
    const session = http2.connect(`http://127.0.0.1:${(relay.address() as net.AddressInfo).port}`);
    session.on("error", () => {});
    try {
      await openHealthWatch(session);
      blackHole = true;
      const before = await cutCount("http2_ping_timeout");
      // The next PING (within 500 ms) goes unanswered for 1 s: the service closes the connection.
      await upstreamClosed;
      expect(await cutCount("http2_ping_timeout")).toBe(before + 1);
    } finally {
      session.destroy();
      await new Promise<void>((r) => relay.close(() => r()));
    }
  }, 30_000);

  /** corral_connections_cut_total for `reason`, read from the service's /metrics. */
  async function cutCount(reason: string): Promise<number> {
    const text = await (await fetch(`${service.url}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith("corral_connections_cut_total") && l.includes(`reason="${reason}"`));
    return line ? Number(line.split(" ").pop()) : 0;
  }

  it("refuses connections past one address's share at once, and serves other addresses", async () => {
    shareService = await spawnService({
      name: "cluster-registry",
      entry: "services/cluster-registry/src/main.ts",
      env: {
        DATABASE_URL: database.url,
        CORRAL_SERVICE_KEY: randomServiceKey(),
        CORRAL_FIRST_BYTE_TIMEOUT: "2m",
        CORRAL_MAX_CONNECTIONS_PER_ADDRESS: "20",
      },
    });
    const address = "127.0.0.3";
    const held = await Promise.all(Array.from({ length: 20 }, () => idleSocket(shareService!.port, address)));
    const over: Idle[] = [];
    try {
      over.push(...(await Promise.all(Array.from({ length: 5 }, () => idleSocket(shareService!.port, address)))));
      // Refused ones are closed without a byte from either side (the held ones wait two minutes).
      await Promise.all(over.map((o) => o.closed));
      expect(held.filter((h) => h.socket.closed)).toHaveLength(0);
      await expect(healthz(shareService.port, address)).rejects.toThrow();
      expect(await healthz(shareService.port, "127.0.0.4")).toBe(200);
    } finally {
      for (const h of [...held, ...over]) h.socket.destroy();
    }
  }, 90_000);
});
