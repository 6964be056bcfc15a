// Turns a lease the dispatcher claimed into an Assign on the session's stream: the lease is held,
// credit spent, the task's stored bytes sent as they are, and its start reported. This is the one
// port from the dispatcher towards sessions.
import { create } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { AssignSchema } from "@corral/proto";
import type { Logger } from "pino";
import type { BrokerMetrics } from "../metrics.js";
import type { PresencePublisher } from "../presence-publisher.js";
import { attemptMember } from "../redis/keys.js";
import type { StreamEntry } from "../redis/stream-entries.js";
import type { RunnerSession } from "../runner-session.js";
import type { LeaseHoldings } from "./lease-holdings.js";
import type { ResultReporter } from "./result-reporter.js";

export interface Assignments {
  /** A lease of `entry` was granted to `session`: record it and send Assign. */
  granted(session: RunnerSession, entry: StreamEntry, token: string, expiryMs: number): void;
}

export function createAssignments(deps: {
  holdings: LeaseHoldings;
  reporter: ResultReporter;
  presence: PresencePublisher;
  metrics: BrokerMetrics;
  logger: Logger;
}): Assignments {
  const { holdings, reporter, presence, metrics, logger } = deps;
  return {
    granted(session, entry, token, expiryMs) {
      if (session.state === "closed") {
        // The dispatcher gives back leases of sessions that closed during the claim; should one
        // still get here, nobody runs it: the lease expires and job-service schedules the next
        // attempt.
        logger.info({ task: entry.taskId, attempt: entry.attempt }, "lease granted to a session that just closed");
        return;
      }
      session.account.spend();
      const member = attemptMember(entry.taskId, entry.attempt);
      holdings.hold(session, member, { taskId: entry.taskId, attempt: entry.attempt, token, jobId: entry.jobId, queue: entry.queue, sinceMs: Date.now(), expireMs: expiryMs });
      const assign = create(AssignSchema, {
        lease: { taskId: entry.taskId, attempt: entry.attempt, token, expireTime: timestampFromMs(expiryMs) },
      });
      // Assign.task goes out as the stored bytes, written like an unknown field (whose data is the
      // length-prefixed payload): the same bytes on the wire as setting `task`, without encoding
      // the envelope again.
      assign.$unknown = [
        { no: AssignSchema.field.task.number, wireType: WireType.LengthDelimited, data: new BinaryWriter().bytes(entry.bytes).finish() },
      ];
      session.send({ case: "assign", value: assign });
      metrics.assignments.inc();
      if (entry.enqueuedAtMs > 0) metrics.dispatchLatency.observe(Math.max(0, Date.now() - entry.enqueuedAtMs) / 1000);
      presence.updated(session);
      reporter.started(session, entry.taskId, entry.attempt, entry.gated?.startedAtMs);
    },
  };
}
