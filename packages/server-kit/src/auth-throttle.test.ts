import { describe, expect, it } from "vitest";
import { createAuthThrottle } from "./auth-throttle.js";

describe("auth throttle", () => {
  it("lets an address fail its burst, then refuses it until tokens come back", () => {
    let t = 0;
    const throttle = createAuthThrottle({ failuresPerSecond: 10, burst: 5, now: () => t });
    for (let i = 0; i < 5; i++) {
      expect(throttle.retryAfterMs("10.0.0.1")).toBe(0);
      throttle.failed("10.0.0.1");
    }
    expect(throttle.retryAfterMs("10.0.0.1")).toBe(100);
    t += 100;
    expect(throttle.retryAfterMs("10.0.0.1")).toBe(0);
  });

  it("keeps addresses apart", () => {
    const throttle = createAuthThrottle({ failuresPerSecond: 1, burst: 1, now: () => 0 });
    throttle.failed("10.0.0.1");
    expect(throttle.retryAfterMs("10.0.0.1")).toBeGreaterThan(0);
    expect(throttle.retryAfterMs("10.0.0.2")).toBe(0);
  });

  it("forgets the least recently failing addresses when it tracks too many", () => {
    const throttle = createAuthThrottle({ failuresPerSecond: 1, burst: 1, maxAddresses: 2, now: () => 0 });
    throttle.failed("a");
    throttle.failed("b");
    throttle.failed("c");
    expect(throttle.retryAfterMs("a")).toBe(0);
    expect(throttle.retryAfterMs("c")).toBeGreaterThan(0);
  });
});
