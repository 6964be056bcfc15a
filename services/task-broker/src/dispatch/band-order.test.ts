// The order a dispatch group reads its bands in, on its own.
import { describe, expect, it } from "vitest";
import { createBandList, insertBand, STARVATION_TURN, turnOrder } from "./band-order.js";

describe("band order", () => {
  it("keeps bands highest priority first, subtask bands above root bands, each once", () => {
    const bands: string[] = [];
    expect(insertBand(bands, "q!p1")).toBe(true);
    expect(insertBand(bands, "q!p5s")).toBe(true);
    expect(insertBand(bands, "q!p5")).toBe(true);
    expect(insertBand(bands, "b!p1")).toBe(true);
    expect(insertBand(bands, "q!p1")).toBe(false);
    expect(bands).toEqual(["q!p5s", "q!p5", "b!p1", "q!p1"]);
  });

  it("goes lowest first every STARVATION_TURN-th turn, without changing what it was given", () => {
    const ordered = ["high", "mid", "low"];
    const turns = Array.from({ length: 2 * STARVATION_TURN }, (_, i) => turnOrder(ordered, i + 1)[0]);
    expect(turns.filter((first) => first === "low")).toHaveLength(2);
    expect(turns[STARVATION_TURN - 1]).toBe("low");
    expect(turns[2 * STARVATION_TURN - 1]).toBe("low");
    expect(ordered).toEqual(["high", "mid", "low"]);
  });

  it("counts turns per list", () => {
    const a = createBandList();
    const b = createBandList();
    a.add("q!p2");
    a.add("q!p1");
    for (let i = 1; i < STARVATION_TURN; i++) expect(a.nextTurn(a.items)).toEqual(["q!p2", "q!p1"]);
    expect(b.nextTurn(["x", "y"])).toEqual(["x", "y"]);
    expect(a.nextTurn(a.items)).toEqual(["q!p1", "q!p2"]);
  });
});
