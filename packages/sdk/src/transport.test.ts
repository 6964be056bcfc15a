// The SDK's transport: unary calls over the wire package's HTTP/2 transport, with the API key and
// UNAVAILABLE retries as interceptors, retrying a peer that is not up yet.
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { GetHostnameResponseSchema, RuntimeService } from "@corral/proto";
import { mount, requireTeam } from "@corral/server-kit";
import { startTestServer } from "@corral/server-kit/testing";
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { createTransport } from "./transport.js";

const KEY = "corral_h2t_0123456789abcdef0123";

describe("the SDK's transport", () => {
  it("retries UNAVAILABLE until the peer is up", async () => {
    // A free port, closed again: nothing listens on it until the server starts there.
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const p = (probe.address() as { port: number }).port;
        probe.close(() => resolve(p));
      });
    });
    const transport = createTransport({
      baseUrl: `http://127.0.0.1:${port}`,
      apiKey: KEY,
      retry: { maxAttempts: 30, baseDelayMs: 50, maxDelayMs: 100 },
    });
    const call = createClient(RuntimeService, transport).getHostname({});
    await new Promise((r) => setTimeout(r, 200));
    const srv = await startTestServer({
      port,
      keys: { [KEY]: { kind: "user", teamId: "team-late", keyId: "h2t" } },
      mounts: [mount(RuntimeService, { getHostname: (_req, ctx) => create(GetHostnameResponseSchema, { hostname: requireTeam(ctx) }) })],
    });
    try {
      expect((await call).hostname).toBe("team-late");
    } finally {
      await srv.close();
    }
  });
});
