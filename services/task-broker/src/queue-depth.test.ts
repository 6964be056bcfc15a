import { describe, expect, it } from "vitest";
import { createBrokerMetrics, registerQueueDepth } from "./metrics.js";

describe("queue depth metric", () => {
  it("sums each cluster's waiting entries at scrape time and keeps the deepest clusters", async () => {
    const metrics = createBrokerMetrics();
    let stats = [
      { clusterId: "c1", queue: "a:v1.0", length: 9, pending: 2, lag: 7, oldestAgeMs: 0 },
      { clusterId: "c1", queue: "b:v1.0", length: 1, pending: 0, lag: 1, oldestAgeMs: 0 },
      { clusterId: "c2", queue: "a:v1.0", length: 3, pending: 0, lag: 3, oldestAgeMs: 0 },
      { clusterId: "c3", queue: "a:v1.0", length: 1, pending: 0, lag: 1, oldestAgeMs: 0 },
    ];
    registerQueueDepth(metrics, async () => stats, 2);
    const first = await metrics.registry.metrics();
    expect(first).toContain('corral_queue_depth{cluster_id="c1"} 8');
    expect(first).toContain('corral_queue_depth{cluster_id="c2"} 3');
    expect(first).toContain('corral_queue_depth{cluster_id="other"} 1');
    // A drained cluster's series goes with the next scrape.
    stats = stats.filter((s) => s.clusterId !== "c1");
    const second = await metrics.registry.metrics();
    expect(second).not.toContain('cluster_id="c1"');
  });
});
