import type { JobTrace, TaskSpan } from "@corral/sdk";
import { describe, expect, it } from "vitest";
import { renderWaterfall, spanTree } from "./span-waterfall.js";

const t0 = Date.UTC(2026, 11, 4, 12, 0, 0);
const at = (ms: number) => new Date(t0 + ms);

function span(over: Partial<TaskSpan> & Pick<TaskSpan, "spanId" | "parentSpanId" | "display">): TaskSpan {
  return {
    traceId: "t".repeat(32),
    taskId: over.spanId,
    parentTaskId: "",
    attempt: 1,
    identifier: { name: over.display, version: "v1.0" },
    cluster: "c",
    node: "r1",
    queued: at(0),
    started: at(0),
    ended: at(1000),
    outcome: "computed",
    error: "",
    ...over,
  };
}

const trace: JobTrace = {
  jobId: "job-1",
  traceId: "t".repeat(32),
  parentSpanId: "",
  spans: [
    span({ spanId: "leaf", parentSpanId: "child2", display: "leaf", queued: at(600), started: at(700), ended: at(1000), outcome: "failed", error: "broke" }),
    span({ spanId: "root", parentSpanId: "", display: "root", queued: at(0), started: at(0), ended: at(200) }),
    span({ spanId: "child1", parentSpanId: "root", display: "child", queued: at(200), started: at(250), ended: at(300), outcome: "retried" }),
    span({ spanId: "child2", parentSpanId: "root", display: "child", attempt: 2, queued: at(300), started: at(400), ended: at(600) }),
  ],
};

describe("span waterfall", () => {
  it("orders spans as a tree: each attempt under its parent's, siblings by queue time", () => {
    expect(spanTree(trace.spans).map((r) => [r.span.spanId, r.depth])).toEqual([
      ["root", 0],
      ["child1", 1],
      ["child2", 1],
      ["leaf", 2],
    ]);
  });

  it("draws bars on the job's time axis: waiting light, running solid", () => {
    const lines = renderWaterfall(trace, { width: 10, now: at(5000) });
    expect(lines[0]).toContain("job job-1");
    expect(lines[0]).toContain("1.00s");
    const rows = lines.slice(2);
    expect(rows[0]).toMatch(/^root .*computed .*0ms .*200ms .*\|███       \|$/);
    expect(rows[1]).toMatch(/^├─ child .*retried .*50ms .*50ms/);
    expect(rows[2]).toMatch(/^└─ child #2 /);
    expect(rows[3]).toMatch(/^   └─ leaf .*failed .*\|      ░███\|$/);
    expect(rows[4]!.trim()).toBe("broke");
  });

  it("draws a running span up to now", () => {
    const running: JobTrace = { ...trace, spans: [span({ spanId: "a", parentSpanId: "", display: "a", started: at(500), ended: undefined, outcome: "running" })] };
    const [, , row] = renderWaterfall(running, { width: 10, now: at(1000) });
    expect(row).toMatch(/running .*500ms .*500ms\+ .*\|░░░░░▒▒▒▒▒\|$/);
  });
});
