import { describe, expect, it } from "vitest";
import { bodyTooSlow } from "./body-rate.js";

describe("bodyTooSlow", () => {
  const rate = { minBytesPerSecond: 100, graceMs: 5_000 };
  it("lets a body start slowly within the grace time", () => {
    expect(bodyTooSlow({ startedAt: 0, bytes: 0 }, rate, 5_000)).toBe(false);
  });
  it("ends a body that averages below the minimum rate after the grace time", () => {
    expect(bodyTooSlow({ startedAt: 0, bytes: 500 }, rate, 6_000)).toBe(true);
  });
  it("keeps a body at or above the minimum rate", () => {
    expect(bodyTooSlow({ startedAt: 0, bytes: 600 }, rate, 6_000)).toBe(false);
  });
  it("never ends a body when no minimum is set", () => {
    expect(bodyTooSlow({ startedAt: 0, bytes: 0 }, { minBytesPerSecond: 0, graceMs: 0 }, 1e9)).toBe(false);
  });
});
