// Sends the task log buffer to job-service: one call in flight at a time, after a short window
// (at once when a batch is full or someone waits), a pause after a failed call. Owns the timer, the
// call in flight and whether the forwarder closed.
import type { Logger } from "pino";
import type { LogBatch, LogBuffer } from "./log-buffer.js";
import type { TaskLogCounts, TaskLogSink } from "./log-forwarder.js";

export interface LogSendLoop {
  /** Seq of the first line of the call in flight, if any. */
  inFlightFrom(): number | undefined;
  /** Sends after the window (at once when a batch is full), unless a send is due or running. */
  schedule(): void;
  /** Sends now when a send waits for its window. */
  hurry(): void;
  /** Sends what is buffered (until `deadline`, ms since the epoch), then no more. Idempotent. */
  close(deadline: number): Promise<void>;
  readonly closed: boolean;
}

export interface LogSendLoopOptions {
  buffer: LogBuffer;
  sink: TaskLogSink;
  logger: Logger;
  counts?: TaskLogCounts;
  batchBytes: number;
  windowMs: number;
  retryMs: number;
  /** A call ended (lines stored, refused or lost): waiters may be done. */
  onSettled(): void;
}

export function createLogSendLoop(o: LogSendLoopOptions): LogSendLoop {
  let inFlightFrom: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let sending: Promise<void> | undefined;

  function clearTimer(): boolean {
    if (!timer) return false;
    clearTimeout(timer);
    timer = undefined;
    return true;
  }

  function schedule(): void {
    if (closed || sending || timer || !o.buffer.hasWork()) return;
    timer = setTimeout(
      () => {
        timer = undefined;
        void send();
      },
      o.buffer.bytes() >= o.batchBytes ? 0 : o.windowMs,
    );
    timer.unref?.();
  }

  /** One call; false when it failed. */
  async function sendBatch(): Promise<boolean> {
    const batch = o.buffer.takeBatch();
    inFlightFrom = batch.count > 0 ? batch.from : undefined;
    try {
      return await deliver(o, batch);
    } finally {
      inFlightFrom = undefined;
      o.onSettled();
    }
  }

  function send(): Promise<void> {
    sending ??= (async () => {
      while (o.buffer.hasWork()) {
        if (await sendBatch()) continue;
        if (closed) return;
        await pause(o.retryMs);
      }
    })().finally(() => {
      sending = undefined;
      schedule();
    });
    return sending;
  }

  return {
    inFlightFrom: () => inFlightFrom,
    schedule,
    hurry() {
      if (clearTimer()) void send();
    },
    async close(deadline) {
      clearTimer();
      if (closed) return;
      closed = true;
      await settledBy(send(), deadline);
    },
    get closed() {
      return closed;
    },
  };
}

/** Sends one batch; false when job-service did not take it (its lines are then counted dropped). */
async function deliver(o: LogSendLoopOptions, batch: LogBatch): Promise<boolean> {
  try {
    const res = await o.sink.appendTaskLogs(batch.request);
    o.counts?.forwarded(batch.count);
    for (const r of res.refused) o.logger.debug({ task: r.taskId, attempt: r.attempt, reason: r.reason }, "task log lines refused");
    return true;
  } catch (err) {
    // Lost: the lines of a batch job-service did not take are not sent again (a log is not
    // a result); the attempt's marker counts them.
    o.logger.warn({ err, lines: batch.count }, "task log lines not stored");
    o.counts?.dropped("send_failed", batch.count);
    o.buffer.batchFailed(batch);
    return false;
  }
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms).unref?.());

/** Waits for `done`, at most until `deadline` (ms since the epoch). */
async function settledBy(done: Promise<void>, deadline: number): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  await Promise.race([done, new Promise<void>((r) => (t = setTimeout(r, Math.max(0, deadline - Date.now()))))]);
  clearTimeout(t);
}
