// TLS: with a certificate and key the same port serves gRPC over HTTP/2 and HTTP/1.1 (ALPN), under
// the same connection limits as plain text.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { GetRuntimeConfigResponseSchema, RuntimeService } from "@corral/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, createServer, mount, type CorralServer } from "./index.js";

const KEY = "corral_tls_0123456789abcdef0123";

describe("server-kit over TLS", () => {
  let dir: string;
  let cert: Buffer;
  let server: CorralServer;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "corral-tls-"));
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ], { stdio: "ignore" });
    cert = readFileSync(join(dir, "cert.pem"));
    server = createServer({
      name: "tls-test",
      port: 0,
      tls: { cert, key: readFileSync(join(dir, "key.pem")) },
      verifier: { verify: async (k) => (k === KEY ? { kind: "user", teamId: "t", keyId: "tls" } : undefined) },
      mounts: [mount(RuntimeService, { getRuntimeConfig: () => create(GetRuntimeConfigResponseSchema, { serverVersion: "tls" }) })],
    });
    await server.listen();
    server.setServing(true);
  });
  afterAll(async () => {
    await server?.close(500);
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves gRPC over HTTP/2 with TLS", async () => {
    expect(server.url.startsWith("https://")).toBe(true);
    const client = createClient(
      RuntimeService,
      createGrpcTransport({ baseUrl: server.url, nodeOptions: { ca: cert }, interceptors: [bearer(KEY)] }),
    );
    expect((await client.getRuntimeConfig({})).serverVersion).toBe("tls");
  });

  it("serves HTTP/1.1 clients on the same TLS port", async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = https.request(`${server.url}/healthz`, { ca: cert }, (res) => {
        let data = "";
        res.on("data", (d) => (data += d));
        res.on("end", () => resolve(`${res.statusCode} ${data.trim()}`));
      });
      req.on("error", reject);
      req.end();
    });
    expect(body).toBe("200 SERVING");
  });

  function tlsServer(limits: Parameters<typeof createServer>[0]["connectionLimits"]): CorralServer {
    return createServer({
      name: "tls-limits",
      port: 0,
      tls: { cert, key: readFileSync(join(dir, "key.pem")) },
      verifier: { verify: async () => undefined },
      mounts: [],
      connectionLimits: limits,
    });
  }
  const closedSocket = (s: net.Socket) => new Promise<void>((resolve) => s.once("close", () => resolve()));
  const connected = (s: net.Socket) => new Promise<void>((resolve) => s.once("connect", () => resolve()));

  it("closes a socket that never starts its TLS handshake", async () => {
    const limited = tlsServer({ firstByteTimeoutMs: 200, headersTimeoutMs: 200, requestTimeoutMs: 1_000 });
    await limited.listen();
    try {
      const s = net.connect({ port: limited.port, host: "127.0.0.1" });
      s.on("error", () => {});
      await closedSocket(s);
    } finally {
      await limited.close(500);
    }
  });

  it("answers 408 to an HTTP/1.1 client over TLS whose headers trickle in", async () => {
    const limited = tlsServer({ headersTimeoutMs: 300, requestTimeoutMs: 1_000 });
    await limited.listen();
    try {
      const s = tls.connect({ port: limited.port, host: "127.0.0.1", ca: cert, ALPNProtocols: ["http/1.1"] });
      s.on("error", () => {});
      await new Promise<void>((resolve) => s.once("secureConnect", () => resolve()));
      let answer = "";
      s.on("data", (d: Buffer) => (answer += d.toString()));
      s.write("GET /healthz HTTP/1.1\r\nHost: t\r\n");
      const trickle = setInterval(() => s.write("X-Slow: 1\r\n"), 50);
      try {
        await closedSocket(s);
      } finally {
        clearInterval(trickle);
      }
      expect(answer).toMatch(/^HTTP\/1\.1 408/);
    } finally {
      await limited.close(500);
    }
  });

  it("refuses a connection past its address's share", async () => {
    const limited = tlsServer({ maxConnectionsPerAddress: 2 });
    await limited.listen();
    const open = () => {
      const s = net.connect({ port: limited.port, host: "127.0.0.1", localAddress: "127.0.0.9" });
      s.on("error", () => {});
      return s;
    };
    const sockets = [open(), open()];
    try {
      // The third connects only after the first two, so it is the one past the share.
      await Promise.all(sockets.map(connected));
      sockets.push(open());
      await closedSocket(sockets[2]!);
      expect(sockets[0]!.closed || sockets[1]!.closed).toBe(false);
    } finally {
      for (const s of sockets) s.destroy();
      await limited.close(500);
    }
  });
});
