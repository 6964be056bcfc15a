// The error text a runner reports for a failed task, and how a runner finds a task's class.
import { describe, expect, it } from "vitest";
import { Task } from "../task.js";
import { describeError, TaskRegistry } from "./execute-task.js";

describe("describeError", () => {
  it("turns a NUL or a lone surrogate into U+FFFD, which the broker would refuse (ending the runner's stream)", () => {
    const text = describeError("bad bytes: \u0000\u0001 and \ud800 end");
    expect(text).toBe("bad bytes: \ufffd\u0001 and \ufffd end");
    expect(describeError(new Error("x\u0000y"))).not.toContain("\u0000");
  });
});

class ResizeV1 extends Task<undefined> {
  static override identifier = { name: "img/Resize", version: "v1.0" };
  override execute(): void {}
}
class ResizeV13 extends Task<undefined> {
  static override identifier = { name: "img/Resize", version: "v1.3" };
  override execute(): void {}
}
class ResizeV2 extends Task<undefined> {
  static override identifier = { name: "img/Resize", version: "v2.0" };
  override execute(): void {}
}

describe("TaskRegistry", () => {
  it("answers the same name and major with the highest minor at least the one asked, every time it is asked", () => {
    const registry = new TaskRegistry([ResizeV1, ResizeV13, ResizeV2]);
    for (let i = 0; i < 3; i++) {
      expect(registry.resolve({ name: "img/Resize", version: "v1.0" })).toBe(ResizeV13);
      expect(registry.resolve({ name: "img/Resize", version: "v1.2" })).toBe(ResizeV13);
      expect(registry.resolve({ name: "img/Resize", version: "v1.4" })).toBeUndefined();
      expect(registry.resolve({ name: "img/Resize", version: "v2.0" })).toBe(ResizeV2);
      expect(registry.resolve({ name: "img/Resize", version: "v3.0" })).toBeUndefined();
      expect(registry.resolve({ name: "img/Crop", version: "v1.0" })).toBeUndefined();
    }
  });

  it("stays bounded when asked for many identifiers it does not serve", () => {
    const registry = new TaskRegistry([ResizeV1]);
    for (let i = 0; i < 5_000; i++) expect(registry.resolve({ name: `other/T${i}`, version: "v1.0" })).toBeUndefined();
    expect(registry.resolve({ name: "img/Resize", version: "v1.0" })).toBe(ResizeV1);
  });
});
