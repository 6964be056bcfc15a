// The presence a broker reports for a session: the tasks it runs now (oldest first, bounded, each
// with its identifier, job and start), nothing once it disconnected, and the node state of the event.
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { NodeState, PresenceEvent } from "@corral/proto";
import { describe, expect, it } from "vitest";
import type { RunnerSession } from "../runner-session.js";
import { testSession } from "../test-support/sessions.js";
import { createLeaseHoldings } from "../session/lease-holdings.js";
import { MAX_RUNNING_TASKS, nodeStateFor, presenceReport, runningTasks } from "./presence-report.js";
import { callsOf } from "./report-outbox.js";
import { updateDelay } from "./update-throttle.js";

function session(): RunnerSession {
  return testSession("s-1", {
    runnerId: "runner-1",
    identifiers: [{ $typeName: "corral.common.v1.TaskIdentifier", name: "etl", version: "v1.2" }],
    slots: 4,
  });
}

function holding(s: RunnerSession, taskId: string, sinceMs: number, queue = "etl:v1.0") {
  createLeaseHoldings().hold(s, `${taskId}:1`, { taskId, attempt: 1, token: "t", jobId: `job-${taskId}`, queue, sinceMs, expireMs: sinceMs + 30_000 });
}

describe("running tasks", () => {
  it("names each held lease's task, identifier, job and start, oldest first", () => {
    const s = session();
    holding(s, "b", 2_000, "etl:v1.2!p3");
    holding(s, "a", 1_000);
    const tasks = runningTasks(s.leases.values());
    expect(tasks.map((t) => [t.taskId, t.attempt, t.identifier?.name, t.identifier?.version, t.jobId, timestampMs(t.since!)])).toEqual([
      ["a", 1, "etl", "v1.0", "job-a", 1_000],
      ["b", 1, "etl", "v1.2", "job-b", 2_000],
    ]);
  });

  it("names at most the limit, the oldest ones, while busy slots count them all", () => {
    const s = session();
    for (let i = 0; i < MAX_RUNNING_TASKS + 5; i++) holding(s, `t${String(i).padStart(3, "0")}`, 10_000 - i);
    const report = presenceReport(s, PresenceEvent.UPDATED, "b-1", 20_000);
    expect(report.node!.runningTasks).toHaveLength(MAX_RUNNING_TASKS);
    expect(report.node!.busySlots).toBe(MAX_RUNNING_TASKS + 5);
    expect(report.node!.runningTasks[0]!.taskId).toBe(`t${MAX_RUNNING_TASKS + 4}`);
  });

  it("reports nothing running once the session disconnected", () => {
    const s = session();
    holding(s, "a", 1_000);
    const report = presenceReport(s, PresenceEvent.DISCONNECTED, "b-1", 2_000);
    expect(report.node!.runningTasks).toEqual([]);
    expect(report.node!.busySlots).toBe(0);
    expect(report.node!.state).toBe(NodeState.OFFLINE);
  });
});

describe("node state and pacing", () => {
  it("shows DRAINING for a draining session whatever the event, OFFLINE on disconnect", () => {
    expect(nodeStateFor(PresenceEvent.UPDATED, { state: "active" })).toBe(NodeState.ONLINE);
    expect(nodeStateFor(PresenceEvent.UPDATED, { state: "draining" })).toBe(NodeState.DRAINING);
    expect(nodeStateFor(PresenceEvent.DRAINING, { state: "active" })).toBe(NodeState.DRAINING);
    expect(nodeStateFor(PresenceEvent.DISCONNECTED, { state: "draining" })).toBe(NodeState.OFFLINE);
  });

  it("sends an update at once after the throttle interval, else at its end", () => {
    expect(updateDelay(undefined, 5_000, 2_000)).toBe(0);
    expect(updateDelay(1_000, 3_000, 2_000)).toBe(0);
    expect(updateDelay(1_000, 2_500, 2_000)).toBe(500);
  });

  it("splits a batch of reports into bounded calls", () => {
    expect(callsOf([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(callsOf([], 2)).toEqual([]);
  });
});
