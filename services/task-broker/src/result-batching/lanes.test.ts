// The result lanes' rules, without I/O: round-robin over lanes without a call in flight, a lane's
// results in order, the call's limits (results, subtasks, bytes; a bigger result alone), and the
// stall rule.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { TaskResultSchema, type TaskResult } from "@corral/proto";
import { describe, expect, it } from "vitest";
import { classifyFailure } from "./failures.js";
import { ResultLanes, type Item } from "./lanes.js";
import { stallState } from "./stall-watch.js";

function item(lane: string, taskId: string, subtasks = 0): Item {
  const result: TaskResult = create(TaskResultSchema, {
    taskId,
    attempt: 1,
    outcome: { case: "completed", value: { subtasks: Array.from({ length: subtasks }, () => ({ input: new Uint8Array() })) } },
  });
  return { result, lane, resolve() {}, reject() {} };
}

const limits = { batchSize: 3, batchBytes: 1 << 20, maxSubtasks: 10 };
const ids = (t: { items: Item[] }) => t.items.map((i) => i.result.taskId);

describe("result lanes", () => {
  it("take results round-robin from lanes without a call in flight, each lane's in order", () => {
    const lanes = new ResultLanes();
    for (const i of [item("a", "a1"), item("a", "a2"), item("b", "b1"), item("c", "c1")]) lanes.push(i);
    const first = lanes.take({ ...limits, batchSize: 10 });
    // A lane with results left ends the call: its next results wait for this call.
    expect(ids(first)).toEqual(["a1", "a2", "b1", "c1"]);
    expect(first.lanes).toEqual(["a", "b", "c"]);
    for (const i of [item("a", "a3"), item("b", "b2")]) lanes.push(i);
    expect(lanes.sendable()).toBe(0);
    expect(ids(lanes.take(limits))).toEqual([]);
    lanes.idle(["b"]);
    expect(ids(lanes.take(limits))).toEqual(["b2"]);
    lanes.idle(["a"]);
    expect(ids(lanes.take(limits))).toEqual(["a3"]);
    expect(lanes.queued).toBe(0);
  });

  it("stop a call at the batch size and send a lane's rest with its next call", () => {
    const lanes = new ResultLanes();
    for (let n = 1; n <= 5; n++) lanes.push(item("a", `a${n}`));
    lanes.push(item("b", "b1"));
    expect(ids(lanes.take(limits))).toEqual(["a1", "a2", "a3"]);
    expect(ids(lanes.take(limits))).toEqual(["b1"]);
    lanes.idle(["a", "b"]);
    expect(ids(lanes.take(limits))).toEqual(["a4", "a5"]);
  });

  it("send a result with more subtasks than a call carries alone", () => {
    const lanes = new ResultLanes();
    lanes.push(item("a", "small", 2));
    lanes.push(item("b", "huge", 50));
    expect(ids(lanes.take(limits))).toEqual(["small"]);
    expect(ids(lanes.take(limits))).toEqual(["huge"]);
  });

  it("count results stalled only while some are pending past the timeout", () => {
    expect(stallState(0, 100_000, 0, 30_000)).toEqual({ stalled: false });
    expect(stallState(1, 40_000, 0, 30_000)).toEqual({ stalled: true });
    expect(stallState(1, 10_000, 0, 30_000)).toEqual({ stalled: false, recheckInMs: 20_001 });
  });

  it("classify job-service's failures: outages retried, suspects split after a few, refusals split at once", () => {
    expect(classifyFailure(new Error("socket hang up"))).toBe("transient");
    expect(classifyFailure(new ConnectError("down", Code.Unavailable))).toBe("transient");
    expect(classifyFailure(new ConnectError("bug", Code.Internal))).toBe("suspect");
    expect(classifyFailure(new ConnectError("bad", Code.InvalidArgument))).toBe("refused");
  });
});
