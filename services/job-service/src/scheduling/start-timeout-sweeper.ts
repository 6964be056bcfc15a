// Fails queued attempts that waited past their schedule-to-start timeout (a cluster with no
// runner for them, a queue that never drains): each becomes an unrecoverable failure of kind
// SCHEDULE_TO_START_TIMED_OUT through the ledger's result path, so the job ends as any failure
// would, and its queued stream entry is revoked. The deadline is a column: any replica's sweep
// finds it, after any restart.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ResultStatus, TaskErrorKind, TaskResultSchema, type TaskResult } from "@corral/proto";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { ApplyResultsInput, ApplyResultsOutput } from "../domain/apply-results.js";
import type { QueuedAttempt } from "../domain/ports.js";
import type { JobsDatabase } from "../store/database.js";
import { overdueStarts, type OverdueStart } from "../store/schedule-repository.js";
import { createSweepLoop } from "../sweep-loop.js";

export interface StartTimeoutSweeper {
  /** Fails every overdue attempt now; returns how many failed. */
  sweepOnce(): Promise<number>;
  start(): void;
  close(): Promise<void>;
}

export interface StartTimeoutSweeperOptions {
  db: Kysely<JobsDatabase>;
  reportResults(input: ApplyResultsInput): Promise<ApplyResultsOutput>;
  /**
   * Sends the tasks the failures made ready (the dependants of a failed optional task), as a
   * broker's batch would; what it cannot send stays in the outbox for its sweeper.
   */
  enqueueReady(ready: ApplyResultsOutput["ready"]): Promise<unknown>;
  /** Deletes the failed attempts' queued stream entries (best effort: a late claim is stale anyway). */
  revokeQueued(teamId: string, jobId: string, queued: QueuedAttempt[]): Promise<void>;
  now?: () => Date;
  /** How often it looks (default 1 s). */
  intervalMs?: number;
  batchSize?: number;
  logger?: Logger;
}

export function createStartTimeoutSweeper(options: StartTimeoutSweeperOptions): StartTimeoutSweeper {
  const now = options.now ?? (() => new Date());
  const intervalMs = options.intervalMs ?? 1_000;
  const batchSize = options.batchSize ?? 500;

  const sweeper: StartTimeoutSweeper = {
    async sweepOnce() {
      let failed = 0;
      for (;;) {
        const at = now();
        const overdue = await overdueStarts(options.db, at, batchSize);
        if (overdue.length === 0) break;
        const out = await options.reportResults({ results: overdue.map((o) => timeoutResult(o, at)) });
        if (out.ready.length > 0) await options.enqueueReady(out.ready);
        // A task that started meanwhile answers stale and keeps running: only the failed ones go.
        const applied = overdue.filter((_, i) => out.outcomes[i]?.status === ResultStatus.APPLIED);
        for (const [jobKey, attempts] of groupByJob(applied)) {
          const [teamId, jobId] = jobKey.split("\n") as [string, string];
          await options.revokeQueued(teamId, jobId, attempts);
        }
        failed += applied.length;
        if (overdue.length < batchSize) break;
      }
      return failed;
    },
    start: () => loop.start(),
    close: () => loop.close(),
  };
  const loop = createSweepLoop({
    sweep: () => sweeper.sweepOnce(),
    intervalMs,
    logger: options.logger,
    messages: { swept: "tasks failed: not started within their schedule-to-start timeout", failed: "schedule-to-start sweep failed" },
  });
  return sweeper;
}

function timeoutResult(o: OverdueStart, at: Date): TaskResult {
  return create(TaskResultSchema, {
    taskId: o.id,
    attempt: o.attempt,
    outcome: {
      case: "failed",
      value: {
        error: `not started within its schedule-to-start timeout of ${o.start_timeout_ms / 1000} s`,
        kind: TaskErrorKind.SCHEDULE_TO_START_TIMED_OUT,
        unrecoverable: true,
        countsAsRetry: true,
        stopTime: timestampFromDate(at),
      },
    },
  });
}

function groupByJob(rows: OverdueStart[]): Map<string, QueuedAttempt[]> {
  const out = new Map<string, QueuedAttempt[]>();
  for (const r of rows) {
    const key = `${r.team_id}\n${r.job_id}`;
    out.set(key, [...(out.get(key) ?? []), { clusterId: r.cluster_id, taskId: r.id, attempt: r.attempt }]);
  }
  return out;
}
