import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { bandPriority, bandQueue, bandRank, baseQueue, canRun, parseVersion, readableQueues, splitQueueName } from "./task-identifier.js";

const id = (name: string, version: string) => ({ name, version }) as never;

describe("the version rule", () => {
  it("needs equal names, equal majors and a runner minor not below the task's", () => {
    expect(canRun(id("x", "v1.3"), id("x", "v1.0"))).toBe(true);
    expect(canRun(id("x", "v1.3"), id("x", "v1.3"))).toBe(true);
    expect(canRun(id("x", "v1.3"), id("x", "v1.4"))).toBe(false);
    expect(canRun(id("x", "v2.9"), id("x", "v1.0"))).toBe(false);
    expect(canRun(id("y", "v1.3"), id("x", "v1.0"))).toBe(false);
  });

  it("turns identifiers into the queues a runner reads", () => {
    expect(readableQueues([id("x", "v1.2"), id("a:b", "v0.0"), id("x", "v1.1")], 100)).toEqual([
      "a:b:v0.0",
      "x:v1.0",
      "x:v1.1",
      "x:v1.2",
    ]);
    expect(splitQueueName("a:b:v0.0")).toEqual({ name: "a:b", version: "v0.0" });
  });

  it("rejects bad versions and too many readable versions with INVALID_ARGUMENT", () => {
    expect(() => parseVersion("1.0")).toThrow(expect.objectContaining({ code: Code.InvalidArgument }));
    expect(() => readableQueues([id("x", "v1.5000")], 4096)).toThrow(expect.objectContaining({ code: Code.InvalidArgument }));
  });
});

describe("priority bands", () => {
  it("puts subtasks in a band just above their priority's root band, below the next priority", () => {
    expect(bandQueue("q:v1.0", 0)).toBe("q:v1.0");
    expect(bandQueue("q:v1.0", 0, true)).toBe("q:v1.0!p0s");
    expect(bandQueue("q:v1.0", 5, true)).toBe("q:v1.0!p5s");
    const ranks = ["q:v1.0", "q:v1.0!p0s", "q:v1.0!p1", "q:v1.0!p1s", "q:v1.0!p9", "q:v1.0!p9s"].map(bandRank);
    expect(ranks).toEqual([0, 1, 2, 3, 18, 19]);
    expect(bandRank("q:v1.0!p4s!g")).toBe(9);
    expect(baseQueue("q:v1.0!p0s")).toBe("q:v1.0");
    expect(baseQueue("q:v1.0!p3s!g")).toBe("q:v1.0");
    expect(bandPriority("q:v1.0!p3s")).toBe(3);
  });
});
