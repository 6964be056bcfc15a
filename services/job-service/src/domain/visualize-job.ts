// VisualizeJob: the whole graph up to max_tasks tasks, beyond that one box per identifier and state.
import { NotFoundError } from "@corral/server-kit";
import type { JobsStore } from "./ports.js";
import { renderGraph, stateLabel, type GraphEdge, type GraphNode, type RenderedGraph, type RenderOptions } from "./render-graph.js";

/** How to draw: direction and theme as renderGraph takes them, and whether the job's name is the title. */
export interface VisualizeOptions extends Omit<RenderOptions, "title"> {
  includeJobName?: boolean;
}

export const DEFAULT_VISUALIZE_MAX_TASKS = 200;

export async function visualizeJob(
  store: JobsStore,
  teamId: string,
  jobId: string,
  maxTasks = DEFAULT_VISUALIZE_MAX_TASKS,
  options: VisualizeOptions = {},
): Promise<RenderedGraph & { summarized: boolean }> {
  const job = await store.jobs.findJob(teamId, jobId);
  if (!job) throw new NotFoundError("job", jobId);
  const render: RenderOptions = { direction: options.direction, theme: options.theme, title: options.includeJobName ? job.name : undefined };
  const limit = maxTasks === 0 ? DEFAULT_VISUALIZE_MAX_TASKS : maxTasks;
  if (job.total <= limit) {
    const tasks = await store.reads.graphTasks(jobId, limit);
    const nodes: GraphNode[] = tasks.map((t) => ({
      id: t.id,
      label: t.display,
      detail: `${t.identifier_name} ${t.identifier_version} · ${stateLabel(t.state)}`,
      state: t.state,
    }));
    const edges: GraphEdge[] = [];
    for (const t of tasks) if (t.parent_id) edges.push({ from: t.parent_id, to: t.id, kind: "parent" });
    for (const d of await store.reads.graphEdges(jobId)) edges.push({ from: d.depends_on_id, to: d.task_id, kind: "dependency" });
    return { ...renderGraph(nodes, edges, render), summarized: false };
  }
  const { groups, links } = await store.reads.graphSummary(jobId);
  const nodes: GraphNode[] = groups.map((g) => ({
    id: `${g.identifier_name} ${g.identifier_version} ${g.state}`,
    label: `${g.identifier_name} ${g.identifier_version}`,
    detail: `${stateLabel(g.state)} × ${g.n}`,
    state: g.state,
  }));
  const edges: GraphEdge[] = links.map((l) => ({ from: l.from_key, to: l.to_key, kind: l.kind, label: `×${l.n}` }));
  return { ...renderGraph(nodes, edges, render), summarized: true };
}
