// What the registry is told about one runner session: its node as ReportPresence carries it, with
// the tasks it holds leases for now. Pure: a session and a clock in, a report out.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  NodeSchema,
  NodeState,
  PresenceEvent,
  PresenceReportSchema,
  RunningTaskSchema,
  TaskIdentifierSchema,
  type PresenceReport,
  type RunningTask,
} from "@corral/proto";
import type { RunnerSession } from "../runner-session.js";
import type { HeldLease } from "../session/lease-holdings.js";
import { splitQueueName } from "../task-identifier.js";

/** Running tasks one report names at most (Node.running_tasks); busy_slots still counts them all. */
export const MAX_RUNNING_TASKS = 100;

/** The node state a report shows: OFFLINE once disconnected, DRAINING once draining. */
export function nodeStateFor(event: PresenceEvent, session: Pick<RunnerSession, "state">): NodeState {
  if (event === PresenceEvent.DISCONNECTED) return NodeState.OFFLINE;
  if (session.state === "draining" || event === PresenceEvent.DRAINING) return NodeState.DRAINING;
  return NodeState.ONLINE;
}

/** The leases as running tasks, oldest first (ties by task id), at most `max`. */
export function runningTasks(leases: Iterable<HeldLease>, max = MAX_RUNNING_TASKS): RunningTask[] {
  const oldest = [...leases].sort((a, b) => a.sinceMs - b.sinceMs || (a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : a.attempt - b.attempt));
  return oldest.slice(0, Math.max(0, max)).map((l) =>
    create(RunningTaskSchema, {
      taskId: l.taskId,
      attempt: l.attempt,
      identifier: l.queue ? create(TaskIdentifierSchema, splitQueueName(l.queue)) : undefined,
      jobId: l.jobId,
      since: timestampFromMs(l.sinceMs),
    }),
  );
}

/** One session's presence for `event`, seen at `nowMs`. A disconnected session runs nothing. */
export function presenceReport(session: RunnerSession, event: PresenceEvent, brokerId: string, nowMs: number): PresenceReport {
  const gone = event === PresenceEvent.DISCONNECTED;
  return create(PresenceReportSchema, {
    teamId: session.teamId,
    event,
    node: create(NodeSchema, {
      id: session.runnerId,
      sessionId: session.id,
      clusterId: session.cluster.id,
      clusterSlug: session.cluster.slug,
      hostname: session.hardware?.hostname ?? "",
      hardware: session.hardware,
      identifiers: session.identifiers,
      slots: session.slots,
      busySlots: gone ? 0 : session.leases.size,
      runningTasks: gone ? [] : runningTasks(session.leases.values()),
      state: nodeStateFor(event, session),
      labels: session.labels,
      brokerId,
      connectTime: timestampFromDate(session.connectTime),
      lastSeenTime: timestampFromMs(nowMs),
    }),
  });
}
