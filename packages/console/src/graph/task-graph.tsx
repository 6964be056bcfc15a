// The task graph drawn with React Flow: fixed-size nodes coloured by state, laid out by ELK only
// when tasks come or go; state changes restyle nodes in place. Zoom and pan come with React Flow.
import { memo, useEffect, useMemo, useState } from "react";
import { Background, Controls, Handle, MiniMap, Position, ReactFlow, type Edge, type Node, type NodeProps } from "@xyflow/react";
import type { Task } from "@corral/proto";
import { taskStateLabel, tone } from "../ui/format.js";
import { buildGraph, type GroupNodeData, type TaskNodeData } from "./graph-model.js";
import { layoutGraph, nodeHeight, nodeWidth, type Positions } from "./layout.js";

type TaskFlowNode = Node<{ model: TaskNodeData | GroupNodeData }>;

const TaskNode = memo(function TaskNode({ data }: NodeProps<TaskFlowNode>) {
  const model = data.model;
  if (model.kind === "task") {
    const label = taskStateLabel[model.task.state];
    return (
      <div className={`graph-node state-${tone(label)}`} data-task-id={model.task.id} data-state={label}>
        <Handle type="target" position={Position.Top} isConnectable={false} />
        <div className="graph-node-name">{model.task.display || model.task.identifier?.name}</div>
        <div className="graph-node-state">{label}</div>
        <Handle type="source" position={Position.Bottom} isConnectable={false} />
      </div>
    );
  }
  const parts = [...model.counts].map(([state, n]) => `${n} ${taskStateLabel[state]}`);
  const worst = [...model.counts.keys()].map((s) => taskStateLabel[s]);
  const label = worst.find((l) => tone(l) === "bad") ?? worst.find((l) => tone(l) === "busy") ?? worst[0] ?? "queued";
  return (
    <div className={`graph-node graph-group state-${tone(label)}`} data-group-level={model.level}>
      <Handle type="target" position={Position.Top} isConnectable={false} />
      <div className="graph-node-name">
        {model.label} ×{model.taskIds.length}
      </div>
      <div className="graph-node-state">{parts.join(", ")}</div>
      <Handle type="source" position={Position.Bottom} isConnectable={false} />
    </div>
  );
});

const nodeTypes = { task: TaskNode };

export interface TaskGraphProps {
  tasks: ReadonlyMap<string, Task>;
  onSelectTask(id: string): void;
  onSelectGroup(taskIds: string[]): void;
  /** Called once the first layout is drawn. */
  onRendered?(): void;
}

export function TaskGraph({ tasks, onSelectTask, onSelectGroup, onRendered }: TaskGraphProps) {
  const model = useMemo(() => buildGraph(tasks), [tasks]);
  const [positions, setPositions] = useState<{ key: string; at: Positions }>();

  useEffect(() => {
    if (positions?.key === model.shapeKey) return;
    let live = true;
    layoutGraph(model.nodes, model.edges).then(
      (at) => live && setPositions({ key: model.shapeKey, at }),
      () => {},
    );
    return () => {
      live = false;
    };
    // Layout depends only on the shape.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [model.shapeKey]);

  const nodes = useMemo<TaskFlowNode[]>(() => {
    if (!positions) return [];
    return model.nodes.map((n) => ({
      id: n.id,
      type: "task",
      position: positions.at[n.id] ?? { x: 0, y: 0 },
      data: { model: n.data },
      width: nodeWidth,
      height: nodeHeight,
      draggable: false,
      connectable: false,
      ariaLabel:
        n.data.kind === "task"
          ? `${n.data.task.display || n.data.task.identifier?.name}: ${taskStateLabel[n.data.task.state]}`
          : `${n.data.label}, ${n.data.taskIds.length} tasks`,
    }));
  }, [model, positions]);
  const edges = useMemo<Edge[]>(
    () =>
      model.edges.map((e) => ({
        id: e.id,
        source: e.source,
        target: e.target,
        className: `edge-${e.kind}`,
        focusable: false,
      })),
    [model],
  );

  useEffect(() => {
    if (positions && onRendered) onRendered();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [positions !== undefined]);

  return (
    <div className="graph" data-testid="task-graph" data-ready={positions ? "true" : "false"} data-collapsed={model.collapsed}>
      {model.collapsed && (
        <p className="note graph-note">
          {tasks.size} tasks: crowded levels are shown as one node per task type. Select a group to list its tasks.
        </p>
      )}
      {!positions && <p className="note">Laying out {tasks.size} tasks…</p>}
      {positions && (
        <ReactFlow
          nodes={nodes}
          edges={edges}
          nodeTypes={nodeTypes}
          fitView
          minZoom={0.05}
          onlyRenderVisibleElements={nodes.length > 200}
          nodesDraggable={false}
          nodesConnectable={false}
          onNodeClick={(_, node) => {
            const m = (node as TaskFlowNode).data.model;
            if (m.kind === "task") onSelectTask(m.task.id);
            else onSelectGroup(m.taskIds);
          }}
        >
          <Background />
          <Controls showInteractive={false} />
          {nodes.length > 30 && <MiniMap pannable zoomable ariaLabel="Overview of the task graph" />}
        </ReactFlow>
      )}
    </div>
  );
}
