// Per-team submission quotas: how many tasks a team may have open (queued or running), and how
// many jobs it may submit per second. Over quota answers RESOURCE_EXHAUSTED with `retry-after-ms`
// in the response metadata. The rate is per job-service replica (a token bucket in memory); the
// open-task count is global and exact: each submission reserves its tasks in the transaction
// that writes them (see domain/team-quota.ts), and subtasks reported with a result count too.
import { envInt, ResourceExhaustedError } from "@corral/server-kit";

export interface SubmitQuotaLimits {
  /**
   * Tasks a team may have open at once, queued or running, over all its jobs and counting the
   * submission and subtasks reported with results (default 1,000,000).
   */
  queuedTasks: number;
  /** Submissions per second per team and replica, with a burst of one second's worth (default 100). */
  submissionsPerSecond: number;
}

export const DEFAULT_SUBMIT_QUOTAS: SubmitQuotaLimits = { queuedTasks: 1_000_000, submissionsPerSecond: 100 };

/** Reads `CORRAL_QUOTA_QUEUED_TASKS` (open = queued + running tasks per team) and `CORRAL_QUOTA_SUBMISSIONS_PER_SECOND`. */
export function readSubmitQuotas(env: Record<string, string | undefined> = process.env): SubmitQuotaLimits {
  return {
    queuedTasks: envInt("CORRAL_QUOTA_QUEUED_TASKS", DEFAULT_SUBMIT_QUOTAS.queuedTasks, { min: 1, max: 2_000_000_000 }, env),
    submissionsPerSecond: envInt(
      "CORRAL_QUOTA_SUBMISSIONS_PER_SECOND",
      DEFAULT_SUBMIT_QUOTAS.submissionsPerSecond,
      { min: 1, max: 1_000_000 },
      env,
    ),
  };
}

export interface SubmitQuotas {
  readonly limits: SubmitQuotaLimits;
  /** Throws ResourceExhaustedError when the team submits faster than its rate. */
  admit(teamId: string): void;
}

interface Bucket {
  tokens: number;
  at: number;
}

export function createSubmitQuotas(limits: SubmitQuotaLimits, options: { now?: () => number } = {}): SubmitQuotas {
  const now = options.now ?? Date.now;
  const rate = limits.submissionsPerSecond;
  const buckets = new Map<string, Bucket>();

  return {
    limits,
    admit(teamId) {
      const t = now();
      const b = buckets.get(teamId) ?? { tokens: rate, at: t };
      b.tokens = Math.min(rate, b.tokens + ((t - b.at) * rate) / 1000);
      b.at = t;
      if (b.tokens < 1) {
        buckets.set(teamId, b);
        const retryAfterMs = Math.max(1, Math.ceil(((1 - b.tokens) * 1000) / rate));
        throw new ResourceExhaustedError(`the team submits more than ${rate} jobs per second`, { retryAfterMs });
      }
      b.tokens -= 1;
      if (buckets.size > 100_000) buckets.clear();
      buckets.set(teamId, b);
    },
  };
}
