import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { TaskSchema, TaskState, type Task } from "@corral/proto";
import { buildGraph, levels } from "./graph-model.js";

function tasks(list: Array<{ id: string; parentId?: string; dependsOn?: string[]; state?: TaskState }>): Map<string, Task> {
  return new Map(list.map((t) => [t.id, create(TaskSchema, { identifier: { name: "x/T", version: "v1.0" }, ...t })]));
}

describe("graph model", () => {
  it("gives roots level 0 and each subtask its parent's level plus one", () => {
    const t = tasks([{ id: "r" }, { id: "a", parentId: "r" }, { id: "b", parentId: "a" }]);
    expect(Object.fromEntries(levels(t))).toEqual({ r: 0, a: 1, b: 2 });
  });

  it("draws every task of a small job, with subtask and dependency edges", () => {
    const t = tasks([{ id: "r" }, { id: "a", parentId: "r" }, { id: "b", parentId: "r", dependsOn: ["a"] }]);
    const g = buildGraph(t);
    expect(g.collapsed).toBe(false);
    expect(g.nodes.map((n) => n.id).sort()).toEqual(["a", "b", "r"]);
    expect(g.edges.map((e) => e.id).sort()).toEqual(["dependency:a->b", "subtask:r->a", "subtask:r->b"]);
  });

  it("collapses a crowded level of a large job into one node with counts per state", () => {
    const list = [{ id: "r" }, ...Array.from({ length: 500 }, (_, i) => ({ id: `s${i}`, parentId: "r", state: i < 100 ? TaskState.COMPUTED : TaskState.QUEUED }))];
    const g = buildGraph(tasks(list));
    expect(g.collapsed).toBe(true);
    expect(g.nodes).toHaveLength(2);
    const group = g.nodes.find((n) => n.data.kind === "group")!.data;
    if (group.kind !== "group") throw new Error("expected a group");
    expect(group.taskIds).toHaveLength(500);
    expect(Object.fromEntries(group.counts)).toEqual({ [TaskState.COMPUTED]: 100, [TaskState.QUEUED]: 400 });
    expect(g.edges).toHaveLength(1);
  });

  it("keeps the layout key when only states change", () => {
    const a = buildGraph(tasks([{ id: "r" }, { id: "a", parentId: "r" }]));
    const b = buildGraph(tasks([{ id: "r", state: TaskState.RUNNING }, { id: "a", parentId: "r", state: TaskState.COMPUTED }]));
    expect(b.shapeKey).toBe(a.shapeKey);
  });
});
