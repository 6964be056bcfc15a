// GetQueueStats' rows: a queue's priority and subtask bands are summed into one row, its gated
// lists into one gated row; other clusters and queues stay apart.
import { describe, expect, it } from "vitest";
import { sumBands, type QueueStat } from "./queue-stats.js";

const stat = (clusterId: string, queue: string, n: number, extra: Partial<QueueStat> = {}): QueueStat => ({
  clusterId,
  queue,
  length: n,
  pending: 1,
  lag: n - 1,
  oldestAgeMs: n * 10,
  ...extra,
});

describe("sumBands", () => {
  it("sums a queue's bands into one row and keeps gated, cluster and queue apart", () => {
    const rows = sumBands([
      stat("c1", "demo/Leaf@1", 5),
      stat("c1", "demo/Leaf@1!p0s", 3),
      stat("c1", "demo/Leaf@1!p9", 2),
      stat("c1", "demo/Leaf@1!p4s!g", 4, { gated: true, pending: 0, lag: 4 }),
      stat("c1", "demo/Leaf@1!g", 1, { gated: true, pending: 0, lag: 1 }),
      stat("c1", "demo/Root@1", 7),
      stat("c2", "demo/Leaf@1!p0s", 6),
    ]);
    expect(rows).toEqual([
      { clusterId: "c1", queue: "demo/Leaf@1", length: 10, pending: 3, lag: 7, oldestAgeMs: 50 },
      { clusterId: "c1", queue: "demo/Leaf@1", length: 5, pending: 0, lag: 5, oldestAgeMs: 40, gated: true },
      { clusterId: "c1", queue: "demo/Root@1", length: 7, pending: 1, lag: 6, oldestAgeMs: 70 },
      { clusterId: "c2", queue: "demo/Leaf@1", length: 6, pending: 1, lag: 5, oldestAgeMs: 60 },
    ]);
  });
});
