import { describe, expect, it } from "vitest";
import { createConnectionBudget, defaultPerAddress } from "./connection-budget.js";

describe("connection budget", () => {
  it("refuses an address past its share while other addresses still get in", () => {
    const budget = createConnectionBudget({ max: 10, perAddress: 2 });
    expect(budget.admit("10.0.0.1")).toBe("admit");
    expect(budget.admit("10.0.0.1")).toBe("admit");
    expect(budget.admit("10.0.0.1")).toBe("address-full");
    expect(budget.admit("10.0.0.2")).toBe("admit");
    expect(budget.open).toBe(3);
    expect(budget.openFrom("10.0.0.1")).toBe(2);
  });

  it("refuses everyone at the process cap, and takes connections again as places are given back", () => {
    const budget = createConnectionBudget({ max: 2, perAddress: 2 });
    expect(budget.admit("a")).toBe("admit");
    expect(budget.admit("b")).toBe("admit");
    expect(budget.admit("c")).toBe("process-full");
    budget.release("a");
    expect(budget.admit("c")).toBe("admit");
    expect(budget.openFrom("a")).toBe(0);
  });

  it("counts loopback like any other address", () => {
    const budget = createConnectionBudget({ max: 10, perAddress: 1 });
    expect(budget.admit("127.0.0.1")).toBe("admit");
    expect(budget.admit("127.0.0.1")).toBe("address-full");
  });

  it("ignores a release of an address that holds nothing", () => {
    const budget = createConnectionBudget({ max: 1, perAddress: 1 });
    budget.release("a");
    expect(budget.open).toBe(0);
    expect(budget.admit("a")).toBe("admit");
  });

  it("gives one address a quarter of the cap by default, and never more than 2,000", () => {
    expect(defaultPerAddress(10_000)).toBe(2_000);
    expect(defaultPerAddress(4_000)).toBe(1_000);
    expect(defaultPerAddress(100_000)).toBe(2_000);
    expect(defaultPerAddress(2)).toBe(1);
  });
});
