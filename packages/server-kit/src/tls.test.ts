// TLS: with a certificate and key the same port serves gRPC over HTTP/2 and HTTP/1.1 (ALPN).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
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
});
