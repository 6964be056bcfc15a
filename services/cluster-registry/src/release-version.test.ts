import { describe, expect, it } from "vitest";
import { versionKey } from "./release-version.js";

// Byte order, as Postgres compares under the C collation.
const byKey = (a: string, b: string) => (versionKey(a) < versionKey(b) ? -1 : versionKey(a) > versionKey(b) ? 1 : 0);

describe("versionKey", () => {
  it("orders versions by semver precedence (the semver.org example)", () => {
    const ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"];
    expect([...ordered].reverse().sort(byKey)).toEqual(ordered);
  });

  it("compares numbers by value, not as text", () => {
    expect(["1.10.0", "1.9.0", "10.0.0", "2.0.0", "1.9.10", "1.9.9"].sort(byKey)).toEqual(["1.9.0", "1.9.9", "1.9.10", "1.10.0", "2.0.0", "10.0.0"]);
  });

  it("puts a word identifier with a dash in the order semver gives it", () => {
    // "a" < "a-b" as text, and a.b has the longer common prefix "a" then more fields.
    expect(["1.0.0-a-b", "1.0.0-a.b", "1.0.0-a"].sort(byKey)).toEqual(["1.0.0-a", "1.0.0-a.b", "1.0.0-a-b"]);
  });

  it("ignores build metadata", () => {
    expect(versionKey("1.2.3+build.5")).toBe(versionKey("1.2.3"));
  });
});
