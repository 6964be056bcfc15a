import { describe, expect, it } from "vitest";
import { AttemptAbort } from "./attempt-abort.js";

describe("AttemptAbort", () => {
  it("aborts a signal read before the abort, with its reason", () => {
    const abort = new AttemptAbort();
    const signal = abort.signal;
    let heard: unknown;
    signal.addEventListener("abort", () => (heard = signal.reason));
    expect(signal.aborted).toBe(false);
    abort.abort(new Error("job canceled"));
    expect(signal.aborted).toBe(true);
    expect((heard as Error).message).toBe("job canceled");
    expect(abort.signal).toBe(signal);
  });

  it("gives an already aborted signal when first read after the abort", () => {
    const abort = new AttemptAbort();
    abort.abort("lease lost");
    expect(abort.aborted).toBe(true);
    expect(abort.signal.aborted).toBe(true);
    expect(abort.signal.reason).toBe("lease lost");
    expect(() => abort.signal.throwIfAborted()).toThrow();
  });

  it("keeps the first reason", () => {
    const abort = new AttemptAbort();
    abort.abort("first");
    abort.abort("second");
    expect(abort.reason).toBe("first");
    expect(abort.signal.reason).toBe("first");
  });
});
