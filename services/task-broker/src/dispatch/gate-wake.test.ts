// When a dispatch group claims gated attempts, on its own.
import { describe, expect, it } from "vitest";
import { createGateWake, gateClaimDue } from "./gate-wake.js";

describe("gate wake", () => {
  it("is due when marked dirty or after the poll interval", () => {
    expect(gateClaimDue(true, 1_000, 900, 500)).toBe(true);
    expect(gateClaimDue(false, 1_000, 900, 500)).toBe(false);
    expect(gateClaimDue(false, 1_400, 900, 500)).toBe(true);
  });

  it("claims once per mark", () => {
    const wake = createGateWake(() => {});
    expect(wake.takeDirty(60_000)).toBe(true);
    expect(wake.takeDirty(60_000)).toBe(false);
    wake.markDirty();
    expect(wake.takeDirty(60_000)).toBe(true);
    expect(wake.takeDirty(60_000)).toBe(false);
  });

  it("marks dirty and pokes once at the earliest retry", async () => {
    let pokes = 0;
    let poked!: () => void;
    const done = new Promise<void>((r) => (poked = r));
    const wake = createGateWake(() => {
      pokes++;
      poked();
    });
    expect(wake.takeDirty(60_000)).toBe(true);
    wake.retryIn(60_000);
    wake.retryIn(1);
    wake.retryIn(30_000);
    await done;
    expect(wake.takeDirty(60_000)).toBe(true);
    expect(pokes).toBe(1);
  });
});
