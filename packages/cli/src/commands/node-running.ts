// How `corral node` shows what a node runs now and where it runs: pure formatting of a Node.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Node, RunningTask } from "@corral/proto";

/** The agent host that launched the node (`name (id)`), or "-" for a runner started by hand. */
export function hostOf(n: Pick<Node, "hostId" | "hostName">): string {
  if (!n.hostId) return "-";
  return n.hostName ? `${n.hostName} (${n.hostId})` : n.hostId;
}

/** A short column: the first running task and how many more ("-" when idle). */
export function runningSummary(n: Pick<Node, "runningTasks" | "busySlots">): string {
  const first = n.runningTasks[0];
  if (!first) return n.busySlots > 0 ? `${n.busySlots} tasks` : "-";
  const more = Math.max(n.busySlots, n.runningTasks.length) - 1;
  return more > 0 ? `${first.taskId} +${more}` : first.taskId;
}

function age(since: Date, now: Date): string {
  const s = Math.max(0, Math.floor((now.getTime() - since.getTime()) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

function line(t: RunningTask, now: Date): string {
  const id = t.identifier ? `${t.identifier.name}@${t.identifier.version}` : "?";
  const since = t.since ? ` since ${timestampDate(t.since).toISOString()} (${age(timestampDate(t.since), now)})` : "";
  return `${t.taskId} attempt ${t.attempt} ${id} job ${t.jobId}${since}`;
}

/**
 * How many tasks run, then one indented line per task and one for those the report left out;
 * "-" when idle.
 */
export function runningLines(n: Pick<Node, "runningTasks" | "busySlots">, now: Date): string {
  const count = Math.max(n.busySlots, n.runningTasks.length);
  if (count === 0) return "-";
  const lines = n.runningTasks.map((t) => `  ${line(t, now)}`);
  const rest = count - n.runningTasks.length;
  if (rest > 0) lines.push(`  and ${rest} more`);
  return [String(count), ...lines].join("\n");
}
