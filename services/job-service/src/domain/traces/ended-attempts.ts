// The attempts a batch of results ended, with the outcome the whole batch decided: a completion
// whose subtasks the quota refused failed after all, a failure in a canceled job ends canceled.
// Those a retry superseded are stored (their task row moves on to the next attempt).
import { SpanOutcome } from "@corral/proto";
import type { JobRow, TaskSpanRow, TaskStateRow } from "../../store/database.js";
import type { EndedAttempt } from "../result-decision.js";
import { CANCELED, FAILED, FAILED_OPTIONAL } from "../states.js";

export interface EndedAttemptOfTask {
  task: TaskStateRow;
  job: Pick<JobRow, "id" | "team_id" | "trace_id" | "trace_parent_span_id" | "trace_flags">;
  attempt: EndedAttempt;
  /** A later attempt replaced it: its span is stored in `row`. */
  superseded: boolean;
  row: TaskSpanRow;
}

export function settleEndedAttempts(
  ended: readonly { taskId: string; attempt: EndedAttempt }[],
  after: ReadonlyMap<string, TaskStateRow>,
  jobs: ReadonlyMap<string, Pick<JobRow, "id" | "team_id" | "trace_id" | "trace_parent_span_id" | "trace_flags">>,
): EndedAttemptOfTask[] {
  const out: EndedAttemptOfTask[] = [];
  for (const e of ended) {
    const task = after.get(e.taskId);
    const job = task && jobs.get(task.job_id);
    if (!task || !job) continue;
    const superseded = task.attempt !== e.attempt.attempt;
    const attempt = { ...e.attempt };
    if (!superseded) {
      if (task.state === CANCELED) attempt.outcome = SpanOutcome.CANCELED;
      else if ((task.state === FAILED || task.state === FAILED_OPTIONAL) && attempt.outcome === SpanOutcome.COMPUTED) {
        attempt.outcome = SpanOutcome.FAILED;
        attempt.error = task.error;
      }
    }
    out.push({
      task,
      job,
      attempt,
      superseded,
      row: {
        task_id: task.id,
        attempt: attempt.attempt,
        job_id: task.job_id,
        runner_id: attempt.runnerId,
        queue_time: attempt.queueTime,
        start_time: attempt.start,
        stop_time: attempt.stop,
        outcome: attempt.outcome,
        error: attempt.error,
      },
    });
  }
  return out;
}
