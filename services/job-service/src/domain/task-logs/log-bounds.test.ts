import { describe, expect, it } from "vitest";
import { clampBatch, keptLines, lineBytes, markerMessage, storableFields } from "./log-bounds.js";

const line = (message: string, fields = "") => ({ message, fields });

describe("task log bounds", () => {
  it("one row of the line bound is the marker's", () => {
    expect(keptLines({ maxLines: 10_000, maxBytes: 1 })).toBe(9_999);
    expect(keptLines({ maxLines: 1, maxBytes: 1 })).toBe(1);
  });

  it("a line weighs its message and fields in UTF-8", () => {
    expect(lineBytes(line("é", '{"a":1}'))).toBe(2 + 7);
  });

  it("a batch over the line bound keeps its newest lines and counts the rest", () => {
    const lines = ["a", "b", "c", "d", "e"].map((m) => line(m));
    const { kept, dropped } = clampBatch(lines, { maxLines: 3, maxBytes: 1000 });
    expect(kept.map((l) => l.message)).toEqual(["d", "e"]);
    expect(dropped).toBe(3);
  });

  it("a batch over the byte bound keeps the newest lines that fit", () => {
    const lines = ["aaaa", "bbbb", "cccc"].map((m) => line(m));
    const { kept, dropped } = clampBatch(lines, { maxLines: 100, maxBytes: 9 });
    expect(kept.map((l) => l.message)).toEqual(["bbbb", "cccc"]);
    expect(dropped).toBe(1);
  });

  it("the marker says how many lines were dropped and what is kept", () => {
    expect(markerMessage(90_001, { maxLines: 10_000, maxBytes: 1_048_576 })).toBe(
      "90001 earlier lines were dropped (an attempt keeps its last 10000 lines or 1048576 bytes of log)",
    );
  });

  it("fields are stored as a JSON object, anything else as the text of a `fields` key", () => {
    expect(storableFields("")).toBe("");
    expect(storableFields('{"n":1}')).toBe('{"n":1}');
    expect(storableFields("[1,2]")).toBe('{"fields":"[1,2]"}');
    expect(storableFields("not json")).toBe('{"fields":"not json"}');
  });
});
