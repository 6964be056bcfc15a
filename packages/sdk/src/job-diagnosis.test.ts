import { create } from "@bufbuild/protobuf";
import { NodeSchema, TaskSchema, TaskState, type Node } from "@corral/proto";
import { describe, expect, it } from "vitest";
import { describeFailedTask, waitingReasons } from "./job-diagnosis.js";

const task = (id: string, name: string, version: string, clusterSlug: string, state = TaskState.QUEUED) =>
  create(TaskSchema, { id, identifier: { name, version }, clusterSlug, state });
const runner = (clusterSlug: string, ...ids: Array<[string, string]>) =>
  create(NodeSchema, { id: `r-${clusterSlug}`, clusterSlug, identifiers: ids.map(([name, version]) => ({ name, version })) });

describe("why queued tasks wait", () => {
  it("names a cluster without online runners once, counting its tasks", () => {
    const reasons = waitingReasons([task("a", "my/Leaf", "v1.0", "empty"), task("b", "my/Leaf", "v1.0", "empty")], new Map());
    expect(reasons).toEqual([{ clusterSlug: "empty", identifier: undefined, tasks: 2, message: "no online runner on cluster empty" }]);
  });

  it("names a task class no online runner of the cluster serves, by the version rule", () => {
    const runners = new Map<string, Node[]>([["c", [runner("c", ["my/Leaf", "v1.2"], ["corral/Echo", "v1.0"])]]]);
    const reasons = waitingReasons(
      [task("a", "my/Leaf", "v1.1", "c"), task("b", "my/Leaf", "v2.0", "c"), task("c", "my/Root", "v1.0", "c")],
      runners,
    );
    expect(reasons.map((r) => r.message)).toEqual([
      "no online runner on cluster c serves my/Leaf@v2.0",
      "no online runner on cluster c serves my/Root@v1.0",
    ]);
  });

  it("gives no reason for tasks that are not queued", () => {
    expect(waitingReasons([task("a", "x", "v1.0", "c", TaskState.RUNNING)], new Map())).toEqual([]);
  });
});

describe("a failed task in one line", () => {
  it("names the task, its identifier, its attempt and its error", () => {
    const t = create(TaskSchema, { id: "t-1", identifier: { name: "my/Leaf", version: "v1.0" }, attempt: 2, maxRetries: 1, error: "boom" });
    expect(describeFailedTask(t)).toBe("task t-1 (my/Leaf@v1.0) failed on attempt 2 of 2: boom");
  });
});
