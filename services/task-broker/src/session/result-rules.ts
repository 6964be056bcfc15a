// What the result reporter sends and answers, as pure functions: a runner's result as job-service's
// TaskResult, the Ack of an outcome, and whether a start's outcome cancels the task.
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { ResultStatus, TaskResultSchema, type ResultOutcome, type TaskResult } from "@corral/proto";
import type { AttemptRecord } from "../redis/lease-store.js";
import type { Decision } from "./session-protocol.js";

export type ReportDecision = Extract<Decision, { kind: "report" }>;

/** The runner's Completed or Failed as the TaskResult job-service applies. */
export function resultOf(decision: ReportDecision): TaskResult {
  const m = decision.message;
  const v = m.value;
  const base = { taskId: v.lease?.taskId ?? "", attempt: v.lease?.attempt ?? 0 };
  if (m.case === "completed") {
    const c = m.value;
    return create(TaskResultSchema, {
      ...base,
      outcome: {
        case: "completed",
        value: { display: c.display, subtasks: c.subtasks, progress: c.progress, stopTime: timestampNow(), output: c.output },
      },
    });
  }
  const f = m.value;
  return create(TaskResultSchema, {
    ...base,
    outcome: {
      case: "failed",
      value: {
        error: f.error,
        countsAsRetry: f.countsAsRetry,
        progress: f.progress,
        unrecoverable: f.unrecoverable,
        display: f.display,
        kind: f.kind,
        stopTime: timestampNow(),
        output: f.output,
      },
    },
  });
}

/** The Ack of a durable result: accepted when applied, else why not. */
export function ackOf(outcome: ResultOutcome): { accepted: boolean; reason: string } {
  const accepted = outcome.status === ResultStatus.APPLIED;
  return { accepted, reason: accepted ? "" : outcome.reason || (ResultStatus[outcome.status] ?? "") };
}

/** Why a started attempt must stop (its job was canceled, or it is not the attempt that runs), or undefined. */
export function cancelAfterStart(outcome: ResultOutcome): string | undefined {
  const stale = outcome.status === ResultStatus.STALE || outcome.status === ResultStatus.NOT_FOUND;
  if (outcome.canceled) return "job canceled";
  return stale ? outcome.reason || "task is not running this attempt" : undefined;
}

/**
 * A result for a lease this stream does not hold: rejected (with why) when the stream once held it
 * (the token matches the attempt's record), else undefined: a protocol violation.
 */
export function unheldRejection(record: AttemptRecord | undefined, token: string): string | undefined {
  if (!record || !token || record.token !== token) return undefined;
  return record.state === "leased" ? "lease held by another session" : `lease ${record.state}`;
}
