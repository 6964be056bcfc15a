// Pure: a job's tasks → the nodes and edges drawn. Small jobs draw every task; large ones collapse
// each crowded level of the task tree into one node per task identifier, with counts per state.
import { TaskState, type Task } from "@corral/proto";

/** Above this many tasks, crowded levels are collapsed. */
export const fullGraphLimit = 400;
/** A level with more tasks than this (of one identifier) becomes one group node when collapsing. */
export const groupMinTasks = 12;

export interface TaskNodeData {
  kind: "task";
  task: Task;
}

export interface GroupNodeData {
  kind: "group";
  label: string;
  level: number;
  taskIds: string[];
  counts: Map<TaskState, number>;
}

export interface GraphNode {
  id: string;
  data: TaskNodeData | GroupNodeData;
}

export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  kind: "subtask" | "dependency";
}

export interface GraphModel {
  nodes: GraphNode[];
  edges: GraphEdge[];
  collapsed: boolean;
  /** Changes only when nodes or edges come or go (not on state changes): the layout's key. */
  shapeKey: string;
}

/** Depth of each task in the subtask tree (roots are 0). */
export function levels(tasks: ReadonlyMap<string, Task>): Map<string, number> {
  const out = new Map<string, number>();
  const depth = (task: Task): number => {
    const known = out.get(task.id);
    if (known !== undefined) return known;
    // Iterative up the parent chain: trees can be thousands deep.
    const chain: Task[] = [];
    let t: Task | undefined = task;
    let base = 0;
    while (t) {
      const k = out.get(t.id);
      if (k !== undefined) {
        base = k + 1;
        break;
      }
      chain.push(t);
      t = t.parentId ? tasks.get(t.parentId) : undefined;
    }
    for (let i = chain.length - 1; i >= 0; i--) out.set(chain[i]!.id, base + (chain.length - 1 - i));
    return out.get(task.id)!;
  };
  for (const t of tasks.values()) depth(t);
  return out;
}

const identifierName = (t: Task) => t.identifier?.name ?? "?";

export function buildGraph(tasks: ReadonlyMap<string, Task>, options: { collapse?: boolean } = {}): GraphModel {
  const collapse = options.collapse ?? tasks.size > fullGraphLimit;
  const depthOf = levels(tasks);
  const nodeOf = new Map<string, string>();
  const nodes: GraphNode[] = [];

  if (collapse) {
    const buckets = new Map<string, Task[]>();
    for (const t of tasks.values()) {
      const key = `${depthOf.get(t.id)}\u0000${identifierName(t)}`;
      const list = buckets.get(key);
      if (list) list.push(t);
      else buckets.set(key, [t]);
    }
    for (const [key, list] of buckets) {
      if (list.length <= groupMinTasks) continue;
      const level = depthOf.get(list[0]!.id)!;
      const id = `group:${key}`;
      const counts = new Map<TaskState, number>();
      for (const t of list) {
        counts.set(t.state, (counts.get(t.state) ?? 0) + 1);
        nodeOf.set(t.id, id);
      }
      nodes.push({ id, data: { kind: "group", label: identifierName(list[0]!), level, taskIds: list.map((t) => t.id), counts } });
    }
  }
  for (const t of tasks.values()) {
    if (nodeOf.has(t.id)) continue;
    nodeOf.set(t.id, t.id);
    nodes.push({ id: t.id, data: { kind: "task", task: t } });
  }

  const edges = new Map<string, GraphEdge>();
  const link = (from: string, to: string, kind: GraphEdge["kind"]) => {
    const source = nodeOf.get(from);
    const target = nodeOf.get(to);
    if (!source || !target || source === target) return;
    const id = `${kind}:${source}->${target}`;
    if (!edges.has(id)) edges.set(id, { id, source, target, kind });
  };
  for (const t of tasks.values()) {
    if (t.parentId) link(t.parentId, t.id, "subtask");
    for (const dep of t.dependsOn) link(dep, t.id, "dependency");
  }
  const edgeList = [...edges.values()];
  const shapeKey = `${nodes.map((n) => n.id).join("|")}#${edgeList.map((e) => e.id).join("|")}`;
  return { nodes, edges: edgeList, collapsed: collapse, shapeKey };
}
