import { describe, expect, it } from "vitest";
import { createAuthThrottle } from "./auth-throttle.js";

describe("auth throttle", () => {
  it("lets an address fail its burst, then refuses it until tokens come back", () => {
    let t = 0;
    const throttle = createAuthThrottle({ failuresPerSecond: 10, burst: 5, now: () => t });
    for (let i = 0; i < 5; i++) expect(throttle.take("10.0.0.1")).toBe(0);
    expect(throttle.take("10.0.0.1")).toBe(100);
    t += 100;
    expect(throttle.take("10.0.0.1")).toBe(0);
  });

  it("counts lookups in flight: concurrent guesses cannot pass the burst", () => {
    const throttle = createAuthThrottle({ failuresPerSecond: 1, burst: 3, now: () => 0 });
    const answers = Array.from({ length: 10 }, () => throttle.take("10.0.0.1"));
    expect(answers.filter((w) => w === 0)).toHaveLength(3);
  });

  it("gives the token back when the key resolved", () => {
    const throttle = createAuthThrottle({ failuresPerSecond: 1, burst: 1, now: () => 0 });
    for (let i = 0; i < 5; i++) {
      expect(throttle.take("10.0.0.1")).toBe(0);
      throttle.refund("10.0.0.1");
    }
  });

  it("keeps addresses apart", () => {
    const throttle = createAuthThrottle({ failuresPerSecond: 1, burst: 1, now: () => 0 });
    throttle.take("10.0.0.1");
    expect(throttle.take("10.0.0.1")).toBeGreaterThan(0);
    expect(throttle.take("10.0.0.2")).toBe(0);
  });

  it("forgets the least recently failing addresses when it tracks too many", () => {
    const throttle = createAuthThrottle({ failuresPerSecond: 1, burst: 1, maxAddresses: 2, now: () => 0 });
    throttle.take("a");
    throttle.take("b");
    throttle.take("c");
    expect(throttle.take("a")).toBe(0);
    expect(throttle.take("c")).toBeGreaterThan(0);
  });
});
