import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { createStreamKeyWatch } from "./stream-key-watch.js";

describe("stream key watch", () => {
  it("asks once per key per sweep however many streams share it, and ends a revoked key's streams", async () => {
    const asked: string[] = [];
    const valid = new Set(["a", "b"]);
    const watch = createStreamKeyWatch({
      intervalMs: 1_000,
      verifier: {
        verify: async () => undefined,
        recheck: async (key) => (asked.push(key), valid.has(key) ? { kind: "user", teamId: "t", keyId: key } : undefined),
      },
    });
    const streams = [watch.watch("a"), watch.watch("a"), watch.watch("a"), watch.watch("b")];
    await watch.sweep();
    expect(asked.sort()).toEqual(["a", "b"]);
    valid.delete("a");
    await watch.sweep();
    expect(streams.map((s) => s.signal.aborted)).toEqual([true, true, true, false]);
    const reason = ConnectError.from(streams[0]!.signal.reason);
    expect(reason.code).toBe(Code.Unauthenticated);
    expect(watch.size).toBe(1);
    streams[3]!.release();
    streams[3]!.release();
    expect(watch.size).toBe(0);
  });

  it("keeps streams open when the registry does not answer", async () => {
    const watch = createStreamKeyWatch({
      intervalMs: 1_000,
      verifier: { verify: async () => Promise.reject(new ConnectError("down", Code.Unavailable)) },
    });
    const s = watch.watch("a");
    await watch.sweep();
    expect(s.signal.aborted).toBe(false);
  });
});
