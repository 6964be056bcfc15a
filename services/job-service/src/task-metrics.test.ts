import { SpanOutcome } from "@corral/proto";
import { describe, expect, it } from "vitest";
import type { EndedAttemptOfTask } from "./domain/traces/ended-attempts.js";
import { createTaskMetrics } from "./task-metrics.js";

function ended(name: string, runMs: number, outcome = SpanOutcome.COMPUTED, started = true): EndedAttemptOfTask {
  const start = new Date(1_000_000);
  return {
    task: { identifier_name: name, identifier_version: "v1.0" },
    attempt: { attempt: 1, runnerId: "r", queueTime: start, start: started ? start : null, stop: new Date(start.getTime() + runMs), outcome, error: "" },
  } as EndedAttemptOfTask;
}

describe("task metrics", () => {
  it("records run times by identifier and outcome, bounding the identifiers", async () => {
    const m = createTaskMetrics(undefined, 2);
    m.observe([ended("a", 20), ended("b", 2000, SpanOutcome.FAILED), ended("c", 5), ended("a", 40), ended("never-started", 0, SpanOutcome.CANCELED, false)]);
    const text = await m.registry.metrics();
    expect(text).toContain('corral_task_duration_seconds_count{identifier="a@v1.0",outcome="computed"} 2');
    expect(text).toContain('corral_task_duration_seconds_count{identifier="b@v1.0",outcome="failed"} 1');
    expect(text).toContain('corral_task_duration_seconds_count{identifier="other",outcome="computed"} 1');
    expect(text).toContain('corral_task_duration_seconds_sum{identifier="a@v1.0",outcome="computed"} 0.06');
    expect(text).not.toContain("never-started");
  });
});
