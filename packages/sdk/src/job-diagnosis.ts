// Why a job waits or failed, worked out from its tasks and the runners online: a pure core the
// SDK's JobClient feeds (listTasks, listRunningNodes) and the CLI prints.
import { TaskState, type Node, type Task as TaskRecord } from "@corral/proto";
import { formatIdentifier, identifierMatches } from "./identifier.js";

/** One reason queued work waits: a cluster without runners, or a task class none of them serves. */
export interface WaitingReason {
  clusterSlug: string;
  /** The task class nobody serves; undefined when the cluster has no online runner at all. */
  identifier: string | undefined;
  /** Queued tasks this reason holds back. */
  tasks: number;
  /** One line for a person. */
  message: string;
}

/**
 * The reasons `queued` tasks cannot start, given the online runners of each of their clusters
 * (`runners.get(slug)`; a missing entry means none). Tasks some online runner serves have no reason.
 */
export function waitingReasons(queued: readonly TaskRecord[], runners: ReadonlyMap<string, readonly Node[]>): WaitingReason[] {
  const reasons = new Map<string, WaitingReason>();
  for (const t of queued) {
    if (t.state !== TaskState.QUEUED || !t.identifier) continue;
    const online = runners.get(t.clusterSlug) ?? [];
    const id = formatIdentifier(t.identifier);
    let reason: Omit<WaitingReason, "tasks"> | undefined;
    if (online.length === 0) {
      reason = { clusterSlug: t.clusterSlug, identifier: undefined, message: `no online runner on cluster ${t.clusterSlug}` };
    } else if (!online.some((n) => n.identifiers.some((r) => identifierMatches(r, t.identifier!)))) {
      reason = { clusterSlug: t.clusterSlug, identifier: id, message: `no online runner on cluster ${t.clusterSlug} serves ${id}` };
    }
    if (!reason) continue;
    const key = `${reason.clusterSlug}\n${reason.identifier ?? ""}`;
    const seen = reasons.get(key);
    if (seen) seen.tasks += 1;
    else reasons.set(key, { ...reason, tasks: 1 });
  }
  return [...reasons.values()];
}

/** Lines of a task's error kept in a one-task summary: the message, not the whole stack. */
const errorLinesShown = 3;

/** A failed task in a line or few: which one, on which attempt, with its error's first lines. */
export function describeFailedTask(t: TaskRecord): string {
  const id = t.identifier ? formatIdentifier(t.identifier) : "task";
  const error = t.error.trim().split("\n").slice(0, errorLinesShown).join("\n  ") || "(no error message)";
  return `task ${t.id} (${id}) failed on attempt ${t.attempt}${t.maxRetries ? ` of ${t.maxRetries + 1}` : ""}: ${error}`;
}
