import { durationMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { RuntimeService } from "@corral/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeOf, startRegistryHarness, type RegistryHarness } from "./test-harness.js";

describe("RuntimeService", () => {
  let h: RegistryHarness;
  beforeAll(async () => {
    h = await startRegistryHarness("runtime", {
      runtime: {
        serverVersion: "9.9.9",
        publicEndpoint: "https://corral.example.com",
        hostname: "corral-host",
        limits: { maxTaskInputBytes: 2048 },
        lease: { leaseDurationMs: 30_000 },
      },
    });
  });
  afterAll(() => h?.close());

  it("reports the server's version, limits, lease settings and endpoint", async () => {
    const config = await h.client(RuntimeService).getRuntimeConfig({});
    expect(config.serverVersion).toBe("9.9.9");
    expect(config.publicEndpoint).toBe("https://corral.example.com");
    expect(config.limits?.maxTaskInputBytes).toBe(2048n);
    expect(config.limits?.maxTasksPerSubmission).toBeGreaterThan(0);
    expect(durationMs(config.lease!.leaseDuration!)).toBe(30_000);
    expect(durationMs(config.lease!.heartbeatInterval!)).toBeLessThan(30_000);
    expect(config.lease?.maxLeaseExpiries).toBe(10);
    expect(config.services).toContain("corral.registry.v1.ClusterService");
  });

  it("reports the host name, to any authenticated caller", async () => {
    expect((await h.client(RuntimeService).getHostname({})).hostname).toBe("corral-host");
    expect((await h.serviceClient(RuntimeService).getHostname({})).hostname).toBe("corral-host");
    expect(await codeOf(h.client(RuntimeService, "corral_nope_0123456789abcdef0123").getHostname({}))).toBe(
      Code.Unauthenticated,
    );
  });
});
