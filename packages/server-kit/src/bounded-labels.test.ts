import { describe, expect, it } from "vitest";
import { createLabelCap, topLabels } from "./bounded-labels.js";

describe("bounded labels", () => {
  it("keeps the first distinct values and names later ones other", () => {
    const cap = createLabelCap(2);
    expect(["a", "b", "c", "a", "d", "b"].map((v) => cap.label(v))).toEqual(["a", "b", "other", "a", "other", "b"]);
    expect(cap.size).toBe(2);
  });

  it("keeps the largest values of a snapshot and sums the rest as other", () => {
    const m = topLabels(new Map([["x", 1], ["y", 5], ["z", 3], ["w", 2]]), 2);
    expect([...m]).toEqual([["y", 5], ["z", 3], ["other", 3]]);
    expect([...topLabels(new Map([["x", 1]]), 2)]).toEqual([["x", 1]]);
  });
});
