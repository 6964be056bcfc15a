// Forwards the log lines runners send to job-service (TaskLogIngestService.AppendTaskLogs), batched
// across sessions: one call in flight at a time, each under a byte bound; a bounded buffer drops
// its oldest lines (counted per attempt, so job-service's marker says how many) when job-service
// is slow or away. Lines are taken for an attempt the session holds, or held: a lease lost
// (expired, the stream dropped) still names the attempt its lines belong to.
import type { AppendTaskLogsRequest, AppendTaskLogsResponse, AttemptLogs, TaskLogs } from "@corral/proto";
import type { Logger } from "pino";
import type { LeaseStore } from "../redis/lease-store.js";
import type { RunnerSession } from "../runner-session.js";
import { createFlushWaiters } from "./flush-waiters.js";
import { createLogBuffer } from "./log-buffer.js";
import { entryBytes, forwardedEntry } from "./log-entries.js";
import { createLogLeaseCheck } from "./log-lease-check.js";
import { createLogSendLoop } from "./log-send-loop.js";

/** Where lines go: job-service's AppendTaskLogs. */
export interface TaskLogSink {
  appendTaskLogs(request: AppendTaskLogsRequest): Promise<Pick<AppendTaskLogsResponse, "refused">>;
}

export interface TaskLogForwarder {
  /** Takes one TaskLogs message of a session (the hook where runner messages arrive). */
  accept(session: RunnerSession, logs: TaskLogs): Promise<void>;
  /** True when lines of `session` wait to be sent or are on their way. */
  pending(session: RunnerSession): boolean;
  /**
   * Resolves once the lines `session` sent so far reached job-service, failed, or were dropped; at
   * the latest after `maxWaitMs`. A result waits for it, so a task's last lines are stored first.
   */
  flushed(session: RunnerSession): Promise<void>;
  /** Sends what is buffered (until `deadline`, ms since the epoch), then takes no more. Idempotent. */
  close(deadline?: number): Promise<void>;
}

/** Why lines were not forwarded: the runner's buffer, ours, a failed call, or an attempt the session never held. */
export type TaskLogDropReason = "runner" | "buffer_full" | "send_failed" | "not_held";

/** Counts of lines forwarded and dropped (the broker's Prometheus counters). */
export interface TaskLogCounts {
  forwarded(n: number): void;
  dropped(reason: TaskLogDropReason, n: number): void;
}

export interface TaskLogForwarderOptions {
  /** Counts lines forwarded and dropped (unset: not counted). */
  counts?: TaskLogCounts;
  sink: TaskLogSink;
  leases: Pick<LeaseStore, "attempt">;
  logger: Logger;
  /** Most bytes of lines held (default 16 MiB); beyond, the oldest are dropped. */
  maxBufferedBytes?: number;
  /** Bytes per AppendTaskLogs call (default 1 MiB). */
  batchBytes?: number;
  /** Lines wait at most this long for company (default 50 ms). */
  windowMs?: number;
  /** Most a result waits for its session's lines (default 5 s). */
  maxWaitMs?: number;
  /** Wait after a failed call before the next (default 1 s). */
  retryMs?: number;
}

export function createTaskLogForwarder(options: TaskLogForwarderOptions): TaskLogForwarder {
  const { logger, counts } = options;
  const maxWaitMs = options.maxWaitMs ?? 5_000;
  const batchBytes = options.batchBytes ?? 1024 * 1024;
  const buffer = createLogBuffer({ maxBufferedBytes: options.maxBufferedBytes ?? 16 * 1024 * 1024, batchBytes });
  const mayWrite = createLogLeaseCheck(options.leases);
  const lastSeqOf = new WeakMap<RunnerSession, number>();
  const waiters = createFlushWaiters(() => loop.inFlightFrom() ?? buffer.oldestSeq());
  const loop = createLogSendLoop({
    buffer,
    sink: options.sink,
    logger,
    counts,
    batchBytes,
    windowMs: options.windowMs ?? 50,
    retryMs: options.retryMs ?? 1_000,
    onSettled: () => waiters.settle(),
  });

  async function held(session: RunnerSession, a: AttemptLogs): Promise<boolean> {
    const lease = a.lease!;
    let ok: boolean;
    try {
      ok = await mayWrite(session, lease.taskId, lease.attempt, lease.token);
    } catch (err) {
      logger.debug({ err, task: lease.taskId }, "could not check a task log's lease; its lines are dropped");
      ok = false;
    }
    if (!ok) {
      logger.debug({ session: session.id, task: lease.taskId, attempt: lease.attempt }, "task log lines for an attempt this runner never held");
      counts?.dropped("not_held", a.lines.length);
    }
    return ok;
  }

  function take(session: RunnerSession, a: AttemptLogs): void {
    const attempt = { clusterId: session.cluster.id, taskId: a.lease!.taskId, attempt: a.lease!.attempt };
    if (a.droppedCount > 0) {
      counts?.dropped("runner", a.droppedCount);
      buffer.noteDropped(attempt, a.droppedCount);
    }
    for (const line of a.lines) {
      const entry = forwardedEntry(line);
      lastSeqOf.set(session, buffer.push(attempt, entry, entryBytes(entry)));
    }
  }

  return {
    async accept(session, logs) {
      if (loop.closed) return;
      for (const a of logs.attempts) if (await held(session, a)) take(session, a);
      const dropped = buffer.dropOverflow();
      if (dropped > 0) counts?.dropped("buffer_full", dropped);
      waiters.settle();
      loop.schedule();
    },
    pending: (session) => waiters.waitsFor(lastSeqOf.get(session)),
    flushed(session) {
      const target = lastSeqOf.get(session);
      if (!waiters.waitsFor(target)) return Promise.resolve();
      // Someone waits: send now rather than at the end of the window.
      loop.hurry();
      return waiters.wait(target!, maxWaitMs);
    },
    async close(deadline = Date.now() + 5_000) {
      await loop.close(deadline);
      waiters.releaseAll();
    },
  };
}
