// SuiteCache's edges without a suite: a suite whose broker serves no JobCacheService (the runner
// keeps entries in memory and says so once) and the suite's refusals as typed SDK errors. The
// shared cache itself is tested against the real broker (task-broker job-cache.test.ts, e2e).
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { JobCacheService, TaskBrokerService } from "@corral/proto";
import { describe, expect, it } from "vitest";
import { createJobCache } from "./cache.js";
import { ApiError } from "./errors.js";
import { createSdkLogger } from "./logger.js";
import { SuiteCache } from "./suite-cache.js";

describe("SuiteCache", () => {
  it("keeps entries in memory, warning once, when the suite serves no job cache", async () => {
    const transport = createRouterTransport(({ service }) => service(TaskBrokerService, {}));
    const warnings: string[] = [];
    const logger = createSdkLogger("suite-cache-test", "warn");
    logger.warn = ((msg: string) => void warnings.push(msg)) as typeof logger.warn;
    const cache = createJobCache(new SuiteCache(transport, { logger }), "job-1");
    await cache.put("k", "v");
    expect(await cache.getText("k")).toBe("v");
    await cache.delete("k");
    expect(await cache.get("k")).toBeUndefined();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("JobCacheService");
  });

  it("surfaces the suite's refusal as an SDK error with its code and message", async () => {
    const transport = createRouterTransport(({ service }) =>
      service(JobCacheService, {
        putCacheEntry() {
          throw new ConnectError("over the per-job limit of 10 bytes (CORRAL_JOB_CACHE_MAX_JOB_BYTES)", Code.ResourceExhausted);
        },
      }),
    );
    const cache = createJobCache(new SuiteCache(transport), "job-1");
    const err = await cache.put("k", "too much").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe(Code.ResourceExhausted);
    expect((err as ApiError).message).toContain("CORRAL_JOB_CACHE_MAX_JOB_BYTES");
  });
});
