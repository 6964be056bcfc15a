import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { generateSlug, isUuid, newId, randomBase62 } from "./ids.js";
import { decodePageToken, encodePageToken, toPage } from "@corral/server-kit";

describe("ids", () => {
  it("draws base62 strings of the asked length", () => {
    const s = randomBase62(1000);
    expect(s).toMatch(/^[A-Za-z0-9]{1000}$/);
    // Every character class shows up in 1000 draws.
    expect(s).toMatch(/[a-z]/);
    expect(s).toMatch(/[A-Z]/);
    expect(s).toMatch(/[0-9]/);
  });

  it("slugifies names like Tilebox", () => {
    expect(generateSlug("testing")).toMatch(/^testing-[A-Za-z0-9]{14}$/);
    expect(generateSlug("Production")).toMatch(/^production-[A-Za-z0-9]{14}$/);
    expect(generateSlug("  Café / GPU  jobs ")).toMatch(/^cafe-gpu-jobs-[A-Za-z0-9]{14}$/);
    expect(generateSlug("---")).toMatch(/^cluster-[A-Za-z0-9]{14}$/);
    const long = generateSlug(`${"a".repeat(84)}-bbbb`);
    expect(long.length).toBeLessThanOrEqual(100);
    expect(long).toMatch(/^a+-[A-Za-z0-9]{14}$/);
  });

  it("makes time-ordered UUIDv7 ids", () => {
    const ids = Array.from({ length: 100 }, newId);
    expect(ids.every(isUuid)).toBe(true);
    expect([...ids].sort()).toEqual(ids);
    expect(isUuid("nope")).toBe(false);
  });
});

describe("page tokens", () => {
  it("round-trips and pages", () => {
    expect(decodePageToken(encodePageToken("abc"))).toBe("abc");
    expect(decodePageToken("")).toBeUndefined();
    const page = toPage([1, 2, 3], 2, String);
    expect(page.items).toEqual([1, 2]);
    expect(decodePageToken(page.nextPageToken)).toBe("2");
    expect(toPage([1, 2], 2, String).nextPageToken).toBe("");
  });

  it("answers INVALID_ARGUMENT naming page_token for tokens it did not make", () => {
    for (const token of ["***", "e30", encodePageToken("not-a-uuid")]) {
      try {
        decodePageToken(token, isUuid);
        expect.unreachable();
      } catch (err) {
        expect((err as { code: Code }).code).toBe(Code.InvalidArgument);
        expect((err as { violations: Array<{ field: string }> }).violations[0]?.field).toBe("page_token");
      }
    }
  });
});
