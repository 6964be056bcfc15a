// The periodic loop behind the sweepers: one pass at a time, the next after the computed wait, a
// failed pass reported and the loop going on, close() waiting for the pass in progress.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createPeriodicLoop } from "./periodic-loop.js";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("createPeriodicLoop", () => {
  it("runs a pass each interval, the first after one interval unless immediate", async () => {
    let passes = 0;
    const loop = createPeriodicLoop({ intervalMs: 1_000, run: async () => void passes++ });
    loop.start();
    loop.start();
    expect(passes).toBe(0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(passes).toBe(1);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(passes).toBe(4);
    await loop.close();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(passes).toBe(4);
    expect(vi.getTimerCount()).toBe(0);

    let eager = 0;
    const first = createPeriodicLoop({ intervalMs: 1_000, immediate: true, run: async () => void eager++ });
    first.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(eager).toBe(1);
    await first.close();
  });

  it("waits what nextDelayMs says after a pass, and the interval when it throws", async () => {
    const at: number[] = [];
    const delays: Array<number | Error> = [100, new Error("no"), 250];
    const loop = createPeriodicLoop({
      intervalMs: 1_000,
      run: async () => void at.push(Date.now()),
      nextDelayMs: () => {
        const d = delays.shift() ?? 1_000;
        if (d instanceof Error) throw d;
        return d;
      },
    });
    const t0 = Date.now();
    loop.start();
    await vi.advanceTimersByTimeAsync(1_000 + 100 + 1_000 + 250);
    expect(at.map((t) => t - t0)).toEqual([1_000, 1_100, 2_100, 2_350]);
    await loop.close();
  });

  it("reports a failed pass and goes on", async () => {
    const errors: unknown[] = [];
    let passes = 0;
    const loop = createPeriodicLoop({
      intervalMs: 10,
      run: async () => {
        passes++;
        if (passes === 1) throw new Error("boom");
      },
      onError: (err) => errors.push(err),
    });
    loop.start();
    await vi.advanceTimersByTimeAsync(20);
    expect(passes).toBe(2);
    expect(errors.map((e) => (e as Error).message)).toEqual(["boom"]);
    await loop.close();
  });

  it("never runs two passes at once, and close() waits for the pass in progress", async () => {
    let release!: () => void;
    let inPass = 0;
    let most = 0;
    let ended = false;
    const loop = createPeriodicLoop({
      intervalMs: 10,
      immediate: true,
      run: async () => {
        inPass++;
        most = Math.max(most, inPass);
        await new Promise<void>((r) => (release = r));
        inPass--;
        ended = true;
      },
    });
    loop.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(most).toBe(1);
    const closing = loop.close();
    expect(ended).toBe(false);
    release();
    await closing;
    expect(ended).toBe(true);
    await vi.advanceTimersByTimeAsync(100);
    expect(most).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("does nothing when closed before it started", async () => {
    let passes = 0;
    const loop = createPeriodicLoop({ intervalMs: 10, immediate: true, run: async () => void passes++ });
    await loop.close();
    loop.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(passes).toBe(0);
  });
});
