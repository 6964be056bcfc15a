// `corral runner start`'s Ctrl-C: drain (saying for how long), then hand the tasks back at once.
import { describe, expect, it } from "vitest";
import { createStopSignals } from "./runner.js";

describe("runner start's stop signals", () => {
  it("drains on the first Ctrl-C, saying for how long, and hands the tasks back on the second", () => {
    const calls: string[] = [];
    const lines: string[] = [];
    const runner = {
      runningTasks: 2,
      stop: () => (calls.push("stop"), Promise.resolve()),
      handBack: () => (calls.push("handBack"), Promise.resolve()),
    };
    const onSignal = createStopSignals(runner, 30, (l) => lines.push(l));
    onSignal("SIGINT");
    expect(calls).toEqual(["stop"]);
    expect(lines[0]).toContain("draining");
    expect(lines[0]).toContain("2 running may finish for up to 30s");
    expect(lines[0]).toContain("Ctrl-C again to hand them back to the queue at once");
    onSignal("SIGINT");
    expect(calls).toEqual(["stop", "handBack"]);
    expect(lines[1]).toBe("SIGINT: handing 2 running tasks back to the queue now");
  });
});
