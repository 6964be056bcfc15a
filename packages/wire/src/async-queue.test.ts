import { describe, expect, it } from "vitest";
import { AsyncQueue } from "./async-queue.js";

describe("AsyncQueue", () => {
  it("hands values to the consumer in order, including those pushed while it waits", async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    const seen: number[] = [];
    const consumer = (async () => {
      for await (const v of q) seen.push(v);
    })();
    q.push(2);
    await Promise.resolve();
    q.push(3);
    q.end();
    await consumer;
    expect(seen).toEqual([1, 2, 3]);
  });

  it("gives a chunk everything queued by then, at most `max` values", async () => {
    const q = new AsyncQueue<number>();
    for (let i = 0; i < 5; i++) q.push(i);
    q.end();
    const chunks: number[][] = [];
    for await (const c of q.chunks(2)) chunks.push(c);
    expect(chunks).toEqual([[0, 1], [2, 3], [4]]);
  });

  it("lets the consumer finish what is queued, then throws the error it ended with", async () => {
    const q = new AsyncQueue<string>();
    q.push("last");
    q.end(new Error("stream lost"));
    q.end(new Error("ignored: ending twice is safe"));
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const v of q) seen.push(v);
      })(),
    ).rejects.toThrow("stream lost");
    expect(seen).toEqual(["last"]);
  });

  it("refuses pushes once ended or once its consumer stopped", async () => {
    const ended = new AsyncQueue<number>();
    ended.end();
    expect(ended.push(1)).toBe(false);

    const q = new AsyncQueue<number>();
    q.push(1);
    for await (const _ of q) break;
    expect(q.closed).toBe(true);
    expect(q.push(2)).toBe(false);
  });
});
