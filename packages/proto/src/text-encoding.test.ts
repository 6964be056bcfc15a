// The ASCII fast path must give exactly what the Text Encoding API gives, and fall back to it.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { TaskEnvelopeSchema } from "./index.js";
import { checkUtf8, decodeUtf8, encodeUtf8 } from "./text-encoding.js";

const samples = ["", "a", "bench/Noop", "0190a8f2-1234-7abc-8def-0123456789ab", "Zürich", "日本語", "emoji 🚀", "x".repeat(300), "é".repeat(300)];

describe("text encoding", () => {
  it("encodes and decodes like TextEncoder and TextDecoder", () => {
    for (const s of samples) {
      const bytes = encodeUtf8(s);
      expect(Buffer.from(bytes).equals(Buffer.from(new TextEncoder().encode(s)))).toBe(true);
      expect(decodeUtf8(bytes)).toBe(s);
      expect(decodeUtf8(bytes, true)).toBe(s);
    }
  });

  it("rejects invalid UTF-8 in strict mode and replaces it otherwise", () => {
    const bad = new Uint8Array([0x61, 0xff, 0x62]);
    expect(() => decodeUtf8(bad, true)).toThrow();
    expect(decodeUtf8(bad)).toBe("a\ufffdb");
    expect(checkUtf8("ok")).toBe(true);
    expect(checkUtf8("\ud800")).toBe(false);
  });

  it("is what Protobuf-ES uses for messages", () => {
    const envelope = create(TaskEnvelopeSchema, { taskId: "t-1", jobName: "Zürich 🚀", display: "x".repeat(400) });
    const bytes = toBinary(TaskEnvelopeSchema, envelope);
    expect(fromBinary(TaskEnvelopeSchema, bytes)).toEqual(envelope);
    expect(Buffer.from(bytes).includes(Buffer.from("Zürich 🚀"))).toBe(true);
  });
});
