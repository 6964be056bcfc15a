// What a broker's ReportProgress batch means for the tasks: the latest entry per task attempt
// (a batch may hold several of one task), each indicator as stored.
import type { RunningProgress } from "@corral/proto";
import type { RunningProgressRow } from "../store/progress-repository.js";

export function runningProgressRows(entries: readonly RunningProgress[]): RunningProgressRow[] {
  const latest = new Map<string, RunningProgressRow>();
  for (const e of entries) {
    // Latest wins: a later entry of the same task replaces the earlier one (and its position).
    latest.delete(e.taskId);
    latest.set(e.taskId, {
      taskId: e.taskId,
      attempt: e.attempt,
      progress: e.progress.map((p) => ({ label: p.label, total: Number(p.total), done: Number(p.done) })),
      display: e.display,
    });
  }
  return [...latest.values()];
}
