// The forwarder's buffer on its own: byte bound, drop counts per attempt, batches cut to a call's bounds.
import { create } from "@bufbuild/protobuf";
import { LogEntrySchema } from "@corral/proto";
import { describe, expect, it } from "vitest";
import { createLogBuffer, MAX_LINES_PER_ATTEMPT, type LogAttempt } from "./log-buffer.js";

const a1: LogAttempt = { clusterId: "c", taskId: "t1", attempt: 1 };
const a2: LogAttempt = { clusterId: "c", taskId: "t2", attempt: 3 };
const line = (message: string) => create(LogEntrySchema, { message });
const summary = (b: ReturnType<ReturnType<typeof createLogBuffer>["takeBatch"]>) =>
  b.request.attempts.map((a) => ({ task: a.taskId, attempt: a.attempt, lines: a.lines.map((l) => l.message), dropped: a.droppedCount }));

describe("log buffer", () => {
  it("hands out lines in seq order, grouped by attempt with order kept", () => {
    const buf = createLogBuffer({ maxBufferedBytes: 1000, batchBytes: 1000 });
    expect(buf.hasWork()).toBe(false);
    expect([buf.push(a1, line("a"), 10), buf.push(a2, line("b"), 10), buf.push(a1, line("c"), 10)]).toEqual([1, 2, 3]);
    expect(buf.oldestSeq()).toBe(1);
    expect(buf.bytes()).toBe(30);
    const batch = buf.takeBatch();
    expect({ from: batch.from, count: batch.count }).toEqual({ from: 1, count: 3 });
    expect(summary(batch)).toEqual([
      { task: "t1", attempt: 1, lines: ["a", "c"], dropped: 0 },
      { task: "t2", attempt: 3, lines: ["b"], dropped: 0 },
    ]);
    expect(buf.hasWork()).toBe(false);
    expect(buf.oldestSeq()).toBeUndefined();
    expect(buf.bytes()).toBe(0);
  });

  it("cuts a batch at the byte bound, but always takes one line", () => {
    const buf = createLogBuffer({ maxBufferedBytes: 1000, batchBytes: 25 });
    buf.push(a1, line("a"), 10);
    buf.push(a1, line("b"), 10);
    buf.push(a1, line("c"), 40);
    expect(buf.takeBatch().count).toBe(2);
    const big = buf.takeBatch();
    expect({ from: big.from, count: big.count }).toEqual({ from: 3, count: 1 });
  });

  it("cuts a batch at the lines-per-attempt limit", () => {
    const buf = createLogBuffer({ maxBufferedBytes: Number.MAX_SAFE_INTEGER, batchBytes: Number.MAX_SAFE_INTEGER });
    for (let i = 0; i <= MAX_LINES_PER_ATTEMPT; i++) buf.push(a1, line(String(i)), 1);
    expect(buf.takeBatch().count).toBe(MAX_LINES_PER_ATTEMPT);
    expect(buf.takeBatch().count).toBe(1);
  });

  it("drops the oldest lines beyond the byte bound and tells their attempt how many", () => {
    const buf = createLogBuffer({ maxBufferedBytes: 25, batchBytes: 1000 });
    buf.push(a1, line("a"), 10);
    buf.push(a1, line("b"), 10);
    buf.push(a2, line("c"), 10);
    expect(buf.dropOverflow()).toBe(1);
    expect(buf.dropOverflow()).toBe(0);
    expect(buf.oldestSeq()).toBe(2);
    expect(summary(buf.takeBatch())).toEqual([
      { task: "t1", attempt: 1, lines: ["b"], dropped: 1 },
      { task: "t2", attempt: 3, lines: ["c"], dropped: 0 },
    ]);
  });

  it("sends drop counts alone when their attempt has no lines waiting", () => {
    const buf = createLogBuffer({ maxBufferedBytes: 1000, batchBytes: 1000 });
    buf.noteDropped(a2, 4);
    buf.noteDropped(a2, 1);
    expect(buf.hasWork()).toBe(true);
    const batch = buf.takeBatch();
    expect(batch.count).toBe(0);
    expect(summary(batch)).toEqual([{ task: "t2", attempt: 3, lines: [], dropped: 5 }]);
    expect(buf.hasWork()).toBe(false);
  });

  it("counts the lines and drop counts of a failed batch as dropped for the next one", () => {
    const buf = createLogBuffer({ maxBufferedBytes: 1000, batchBytes: 1000 });
    buf.noteDropped(a1, 2);
    buf.push(a1, line("a"), 10);
    buf.push(a1, line("b"), 10);
    buf.batchFailed(buf.takeBatch());
    buf.push(a1, line("c"), 10);
    expect(summary(buf.takeBatch())).toEqual([{ task: "t1", attempt: 1, lines: ["c"], dropped: 4 }]);
  });
});
