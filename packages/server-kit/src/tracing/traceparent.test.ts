import { describe, expect, it } from "vitest";
import { formatTraceparent, parseTraceparent } from "./traceparent.js";

const trace = "4bf92f3577b34da6a3ce929d0e0e4736";
const span = "00f067aa0ba902b7";

describe("traceparent", () => {
  it("reads a version 00 header and writes it back the same", () => {
    const p = parseTraceparent(`00-${trace}-${span}-01`);
    expect(p).toEqual({ traceId: trace, spanId: span, flags: 1 });
    expect(formatTraceparent(p!)).toBe(`00-${trace}-${span}-01`);
  });

  it("starts a new trace for what the specification calls invalid", () => {
    for (const bad of [
      "",
      "garbage",
      `ff-${trace}-${span}-01`,
      `00-${"0".repeat(32)}-${span}-01`,
      `00-${trace}-${"0".repeat(16)}-01`,
      `00-${trace}-${span}-01-extra`,
      `00-${trace.slice(1)}-${span}-01`,
    ]) {
      expect(parseTraceparent(bad), bad).toBeUndefined();
    }
  });

  it("reads a later version by its first four fields", () => {
    expect(parseTraceparent(`01-${trace}-${span}-00-more`)).toEqual({ traceId: trace, spanId: span, flags: 0 });
  });
});
