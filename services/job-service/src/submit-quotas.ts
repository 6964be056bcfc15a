// Per-team submission quotas: how many tasks a team may have queued, and how many jobs it may
// submit per second. Over quota answers RESOURCE_EXHAUSTED with `retry-after-ms` in the response
// metadata. Limits are per job-service replica for the rate (a token bucket in memory) and global
// for the queued count (read from Postgres, cached for a moment so a burst of submissions costs
// one query). Subtasks submitted with results are not limited: a result must never be refused.
import { envInt, ResourceExhaustedError } from "@corral/server-kit";
import { sql, type Kysely } from "kysely";
import type { JobsDatabase } from "./store/database.js";

export interface SubmitQuotaLimits {
  /** Tasks a team may have queued at once, counting the submission (default 1,000,000). */
  queuedTasks: number;
  /** Submissions per second per team and replica, with a burst of one second's worth (default 100). */
  submissionsPerSecond: number;
}

export const DEFAULT_SUBMIT_QUOTAS: SubmitQuotaLimits = { queuedTasks: 1_000_000, submissionsPerSecond: 100 };

/** Reads `CORRAL_QUOTA_QUEUED_TASKS` and `CORRAL_QUOTA_SUBMISSIONS_PER_SECOND`. */
export function readSubmitQuotas(env: Record<string, string | undefined> = process.env): SubmitQuotaLimits {
  return {
    queuedTasks: envInt("CORRAL_QUOTA_QUEUED_TASKS", DEFAULT_SUBMIT_QUOTAS.queuedTasks, { min: 1 }, env),
    submissionsPerSecond: envInt(
      "CORRAL_QUOTA_SUBMISSIONS_PER_SECOND",
      DEFAULT_SUBMIT_QUOTAS.submissionsPerSecond,
      { min: 1, max: 1_000_000 },
      env,
    ),
  };
}

export interface SubmitQuotas {
  /** Throws ResourceExhaustedError when the team may not submit `taskCount` tasks now. */
  admit(teamId: string, taskCount: number): Promise<void>;
  /** The submission committed: count its tasks until the next read of the queued total. */
  admitted(teamId: string, taskCount: number): void;
}

interface Bucket {
  tokens: number;
  at: number;
}

interface QueuedCount {
  value: number;
  at: number;
}

export function createSubmitQuotas(
  db: Kysely<JobsDatabase>,
  limits: SubmitQuotaLimits,
  options: { queuedCacheMs?: number; now?: () => number } = {},
): SubmitQuotas {
  const now = options.now ?? Date.now;
  const cacheMs = options.queuedCacheMs ?? 500;
  const rate = limits.submissionsPerSecond;
  const buckets = new Map<string, Bucket>();
  const queued = new Map<string, QueuedCount>();

  const take = (teamId: string) => {
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
  };

  const queuedOf = async (teamId: string): Promise<number> => {
    const hit = queued.get(teamId);
    if (hit && now() - hit.at < cacheMs) return hit.value;
    const { rows } = await sql<{ n: string }>`
      select coalesce(sum(queued), 0)::bigint as n from jobs where team_id = ${teamId} and queued > 0`.execute(db);
    const value = Number(rows[0]?.n ?? 0);
    if (queued.size > 100_000) queued.clear();
    queued.set(teamId, { value, at: now() });
    return value;
  };

  return {
    async admit(teamId, taskCount) {
      take(teamId);
      const current = await queuedOf(teamId);
      if (current + taskCount > limits.queuedTasks) {
        throw new ResourceExhaustedError(
          `the team would have more than ${limits.queuedTasks} queued tasks (${current} queued, ${taskCount} submitted)`,
          { retryAfterMs: Math.max(cacheMs, 1_000) },
        );
      }
    },
    admitted(teamId, taskCount) {
      const hit = queued.get(teamId);
      if (hit) hit.value += taskCount;
    },
  };
}
