// The error text a runner reports for a failed task.
import { describe, expect, it } from "vitest";
import { describeError } from "./execute-task.js";

describe("describeError", () => {
  it("turns a NUL or a lone surrogate into U+FFFD, which the broker would refuse (ending the runner's stream)", () => {
    const text = describeError("bad bytes: \u0000\u0001 and \ud800 end");
    expect(text).toBe("bad bytes: \ufffd\u0001 and \ufffd end");
    expect(describeError(new Error("x\u0000y"))).not.toContain("\u0000");
  });
});
