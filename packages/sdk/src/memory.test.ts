import { describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { formatMemory, parseMemory } from "./memory.js";
import { ValidationError } from "./errors.js";

describe("parseMemory", () => {
  it("reads binary and decimal units", () => {
    expect(parseMemory("16 GiB")).toBe(16n * 1024n ** 3n);
    expect(parseMemory("512 MB")).toBe(512_000_000n);
    expect(parseMemory("2Gi")).toBe(2n * 1024n ** 3n);
    expect(parseMemory("1.5 GiB")).toBe(1610612736n);
    expect(parseMemory("1kb")).toBe(1000n);
    expect(parseMemory("100")).toBe(100n);
    expect(parseMemory("7 B")).toBe(7n);
  });

  it("takes numbers and bigints as bytes", () => {
    expect(parseMemory(1024)).toBe(1024n);
    expect(parseMemory(5n)).toBe(5n);
  });

  it("rejects what it cannot read with INVALID_ARGUMENT naming the field", () => {
    for (const bad of ["lots", "16 XB", "-1 GiB", "", "1.2.3 GB"]) {
      const err = (() => {
        try {
          parseMemory(bad, "spec.runner_memory");
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).code).toBe(Code.InvalidArgument);
      expect((err as ValidationError).violations[0]!.field).toBe("spec.runner_memory");
    }
    expect(() => parseMemory(1.5)).toThrow(ValidationError);
    expect(() => parseMemory(-1)).toThrow(ValidationError);
    expect(() => parseMemory("99999999 PiB")).toThrow(ValidationError);
  });

  it("formats with binary units", () => {
    expect(formatMemory(16n * 1024n ** 3n)).toBe("16 GiB");
    expect(formatMemory(512)).toBe("512 B");
    expect(formatMemory(1536)).toBe("1.5 KiB");
  });
});
