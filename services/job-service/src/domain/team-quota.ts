// The queued-task quota's rules: what a transaction changes in a team's open (queued + running)
// tasks, and the refusal a client or a runner reads.
import { ResourceExhaustedError } from "@corral/server-kit";
import type { JobDelta } from "./states.js";

/** No quota: the count is kept all the same (an int column's largest value). */
export const UNLIMITED_OPEN_TASKS = 2_147_483_647;

/** The wait a refused submission is told to keep; tasks finish at their own pace. */
export const QUOTA_RETRY_AFTER_MS = 1_000;

/** Per team, the change of queued + running tasks that `deltas` make. */
export function openTaskDeltas(deltas: readonly JobDelta[], teamOf: (jobId: string) => string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const d of deltas) {
    const n = (d.counts.queued ?? 0) + (d.counts.running ?? 0);
    const team = teamOf(d.jobId);
    if (n === 0 || team === undefined) continue;
    out.set(team, (out.get(team) ?? 0) + n);
  }
  return out;
}

/** What the limit counts, said the same way everywhere. */
export function quotaText(limit: number, open: number): string {
  return `the team's quota of ${limit} open tasks (queued or running, CORRAL_QUOTA_QUEUED_TASKS); ${open} are open now`;
}

export function quotaExceededError(limit: number, open: number, adding: number, what = "submitted"): ResourceExhaustedError {
  return new ResourceExhaustedError(`${adding} tasks ${what} would exceed ${quotaText(limit, open)}`, {
    retryAfterMs: QUOTA_RETRY_AFTER_MS,
  });
}
