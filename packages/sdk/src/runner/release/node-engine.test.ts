import { describe, expect, it } from "vitest";
import { EngineRangeError, satisfiesEngine } from "./node-engine.js";

describe("satisfiesEngine", () => {
  it.each([
    ["v20.11.0", "", true],
    ["v20.11.0", "*", true],
    ["v20.11.0", ">=20", true],
    ["v20.11.0", ">=22", false],
    ["v20.11.0", ">= 18.0.0", true],
    ["v20.11.0", ">20", false],
    ["v21.0.0", ">20", true],
    ["v20.11.0", "<20", false],
    ["v20.11.0", "<=20", true],
    ["v20.11.0", "^20.1", true],
    ["v21.0.0", "^20.1", false],
    ["v20.11.0", "~20.10.0", false],
    ["v20.10.5", "~20.10.0", true],
    ["v20.11.0", "20.x", true],
    ["v20.11.0", "20", true],
    ["v22.0.0", "20", false],
    ["v20.11.0", "18 || 20", true],
    ["v19.0.0", "18 || 20", false],
    ["v20.11.0", ">=18 <23", true],
    ["v23.1.0", ">=18 <23", false],
    ["v20.11.0", "18 - 20", true],
    ["v21.0.0", "18 - 20", false],
    ["v20.11.0", "=20.11.0", true],
    ["v20.11.0", "20.11.1", false],
  ])("%s satisfies %j: %s", (version, range, expected) => {
    expect(satisfiesEngine(version, range)).toBe(expected);
  });

  it("refuses a range it cannot read instead of guessing", () => {
    expect(() => satisfiesEngine("v20.0.0", ">=twenty")).toThrow(EngineRangeError);
  });
});
