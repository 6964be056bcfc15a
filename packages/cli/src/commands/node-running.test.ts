import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { NodeSchema } from "@corral/proto";
import { describe, expect, it } from "vitest";
import { hostOf, runningLines, runningSummary } from "./node-running.js";

const task = (taskId: string) => ({
  taskId,
  attempt: 1,
  identifier: { name: "etl", version: "v1.2" },
  jobId: "job-1",
  since: timestampFromDate(new Date("2026-12-05T00:00:00Z")),
});

describe("corral node: running tasks and host", () => {
  it("lists each running task with its identifier, job and age, and counts those left out", () => {
    const n = create(NodeSchema, { busySlots: 3, runningTasks: [task("t-1"), task("t-2")] });
    expect(runningLines(n, new Date("2026-12-05T00:01:05Z")).split("\n")).toEqual([
      "3",
      "  t-1 attempt 1 etl@v1.2 job job-1 since 2026-12-05T00:00:00.000Z (1m05s)",
      "  t-2 attempt 1 etl@v1.2 job job-1 since 2026-12-05T00:00:00.000Z (1m05s)",
      "  and 1 more",
    ]);
    expect(runningSummary(n)).toBe("t-1 +2");
  });

  it("shows an idle node as -", () => {
    const n = create(NodeSchema, {});
    expect(runningLines(n, new Date())).toBe("-");
    expect(runningSummary(n)).toBe("-");
  });

  it("names the agent host of a launched runner, and - for one started by hand", () => {
    expect(hostOf(create(NodeSchema, { hostId: "h-1", hostName: "rack-7" }))).toBe("rack-7 (h-1)");
    expect(hostOf(create(NodeSchema, {}))).toBe("-");
  });
});
