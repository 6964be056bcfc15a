// Task log retention: the logs of jobs that ended longer ago than CORRAL_TASK_LOG_RETENTION are
// deleted (the job itself stays). Off when the retention is 0: logs then live as long as their task.
import type { Logger } from "pino";
import { deleteLogsOfJobsEndedBefore } from "../../store/task-log-repository.js";
import type { TaskLogContext } from "./task-logs.js";

export interface LogRetention {
  start(): void;
  /** One pass now; returns the attempts whose logs were deleted. */
  sweepOnce(): Promise<number>;
  close(): Promise<void>;
}

/** Attempts deleted per statement, so one pass never holds a long transaction. */
const CHUNK = 1_000;

export function createLogRetention(
  ctx: Pick<TaskLogContext, "db">,
  options: { retentionMs: number; intervalMs?: number; now?: () => Date; logger?: Logger },
): LogRetention {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  const now = options.now ?? (() => new Date());
  async function sweep(): Promise<number> {
    if (options.retentionMs <= 0) return 0;
    const before = new Date(now().getTime() - options.retentionMs);
    let total = 0;
    for (;;) {
      const n = await deleteLogsOfJobsEndedBefore(ctx.db, before, CHUNK);
      total += n;
      if (n < CHUNK) return total;
    }
  }
  const sweepOnce = () => (running ??= sweep().finally(() => (running = undefined)));
  return {
    start() {
      if (options.retentionMs <= 0 || timer) return;
      timer = setInterval(() => {
        sweepOnce().catch((err: unknown) => options.logger?.warn({ err }, "task log retention pass failed"));
      }, options.intervalMs ?? 60_000);
      timer.unref();
    },
    sweepOnce,
    async close() {
      clearInterval(timer);
      timer = undefined;
      await running?.catch(() => undefined);
    },
  };
}
