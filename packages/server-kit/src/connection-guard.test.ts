import http from "node:http";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./testing/index.js";

function silentSocket(port: number, localAddress: string): Promise<{ socket: net.Socket; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: "127.0.0.1", localAddress });
    socket.on("error", () => {});
    const closed = new Promise<void>((r) => socket.once("close", () => r()));
    socket.once("connect", () => resolve({ socket, closed }));
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

describe("connection guard", () => {
  let srv: TestServer | undefined;
  const sockets: net.Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await srv?.close();
    srv = undefined;
  });

  it("at the process cap, a client that speaks takes the place of a socket that never said anything", async () => {
    srv = await startTestServer({
      mounts: [],
      connectionLimits: { maxConnections: 5, maxConnectionsPerAddress: 5, firstByteTimeoutMs: 60_000 },
    });
    const silent = await Promise.all([1, 2, 3, 4, 5].map(() => silentSocket(srv!.port, "127.0.0.5")));
    sockets.push(...silent.map((s) => s.socket));
    expect(await healthz(srv.port, "127.0.0.6")).toBe(200);
    // One of the silent sockets gave up its place.
    await Promise.race(silent.map((s) => s.closed));
  });

  it("refuses a connection past its address's share at once, while another address gets in", async () => {
    srv = await startTestServer({
      mounts: [],
      connectionLimits: { maxConnections: 100, maxConnectionsPerAddress: 3, firstByteTimeoutMs: 60_000 },
    });
    const held = await Promise.all([1, 2, 3].map(() => silentSocket(srv!.port, "127.0.0.7")));
    sockets.push(...held.map((s) => s.socket));
    const over = await silentSocket(srv.port, "127.0.0.7");
    sockets.push(over.socket);
    await over.closed;
    expect(await healthz(srv.port, "127.0.0.8")).toBe(200);
    const text = await (await fetch(`${srv.url}/metrics`)).text();
    expect(text).toMatch(/corral_connections_cut_total\{reason="address_full"\} 1/);
    expect(text).toMatch(/corral_connections_open [4-9]/);
  });

  it("closes a socket that sends nothing before its first-byte deadline", async () => {
    srv = await startTestServer({ mounts: [], connectionLimits: { firstByteTimeoutMs: 200 } });
    const s = await silentSocket(srv.port, "127.0.0.1");
    sockets.push(s.socket);
    await s.closed;
  });

  it("ends an HTTP/1.1 request whose body averages below the minimum rate", async () => {
    srv = await startTestServer({
      mounts: [],
      connectionLimits: { headersTimeoutMs: 300, requestTimeoutMs: 60_000, minBodyBytesPerSecond: 1_000_000 },
    });
    const s = await silentSocket(srv.port, "127.0.0.1");
    sockets.push(s.socket);
    let answer = "";
    s.socket.on("data", (d: Buffer) => (answer += d.toString()));
    s.socket.write(
      "POST /grpc.health.v1.Health/Check HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
    );
    // Well under a megabyte a second, and never idle long enough for any idle timeout.
    const trickle = setInterval(() => s.socket.write(" "), 20);
    try {
      await s.closed;
    } finally {
      clearInterval(trickle);
    }
    expect(answer).toBe("");
  });
});
