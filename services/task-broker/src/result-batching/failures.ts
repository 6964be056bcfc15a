// How the result batcher reads job-service's answers and weighs results: pure functions.
import { Code, ConnectError } from "@connectrpc/connect";
import type { TaskResult } from "@corral/proto";

/**
 * How a failed call is answered. `transient`: job-service is unreachable or misconfigured, which
 * no entry causes; retried with backoff for as long as it takes. `suspect`: may be a passing fault
 * or an entry it cannot apply; retried a few times, then split. `refused`: the request itself is
 * wrong; split at once.
 */
export type Failure = "transient" | "suspect" | "refused";

const transient = new Set([
  Code.Unavailable,
  Code.DeadlineExceeded,
  Code.Aborted,
  Code.Canceled,
  Code.Unauthenticated,
  Code.PermissionDenied,
  Code.Unimplemented,
]);
const suspect = new Set([Code.Internal, Code.Unknown, Code.ResourceExhausted, Code.DataLoss]);

export function classifyFailure(err: unknown): Failure {
  if (!(err instanceof ConnectError)) return "transient";
  if (transient.has(err.code)) return "transient";
  return suspect.has(err.code) ? "suspect" : "refused";
}

/** Calls of a whole batch that fails with a suspect code before it is split. */
export const suspectAttempts = 3;

/** Why an entry was not stored, for the task's error: no text of the entry itself, and bounded. */
export function refusalMessage(err: unknown): string {
  const e = ConnectError.from(err);
  const why = e.rawMessage.replaceAll("\0", "").slice(0, 500);
  return `the task's result could not be stored: job-service refused it (${Code[e.code] ?? e.code}: ${why})`;
}

/** Subtasks a result adds, which is what makes its call long. */
export function subtaskCount(result: TaskResult): number {
  return result.outcome.case === "completed" ? result.outcome.value.subtasks.length : 0;
}

/** Roughly what a result weighs on the wire: its output, its subtasks' inputs, its error. */
export function resultBytes(r: TaskResult): number {
  let n = 128;
  const o = r.outcome;
  if (o.case === "completed") {
    n += o.value.output?.data.length ?? 0;
    for (const s of o.value.subtasks) n += 64 + s.input.length;
  } else if (o.case === "failed") n += o.value.error.length + (o.value.output?.data.length ?? 0);
  return n;
}

/** The next wait of a retry loop: doubling from 50 ms, at most 5 s. */
export function nextBackoff(delayMs: number): number {
  return Math.min(delayMs * 2, 5_000);
}
