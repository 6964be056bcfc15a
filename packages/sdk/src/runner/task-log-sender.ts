// Sends a runner's task log lines over its Work stream: lines wait a moment for company and go as
// TaskLogs messages under a byte bound while their task runs; what is left of an attempt goes
// just before its result, also on a backed-up stream (the result waits behind them either way, so
// the broker stores them first). With no stream, or a slow one while the task runs, lines wait in
// the bounded buffer.
import { create } from "@bufbuild/protobuf";
import { AttemptLogsSchema, WorkRequestSchema, type LeaseRef, type WorkRequest } from "@corral/proto";
import { TaskLogBuffer, type AttemptLines, type TaskLogBufferLimits } from "./task-log-buffer.js";
import { toLogEntry } from "./task-log-capture.js";

/** Bytes of lines per TaskLogs message. */
const MESSAGE_BYTES = 256 * 1024;

export interface TaskLogSenderOptions extends TaskLogBufferLimits {
  /** Queues a message on the stream; false when there is no stream that takes task logs now. */
  send(message: WorkRequest): boolean;
  /** True when a stream that takes task logs is up. */
  open(): boolean;
  /** True when such a stream is up and not backed up. */
  ready(): boolean;
  /** How long lines wait for company (default 200 ms). */
  windowMs?: number;
}

export class TaskLogSender {
  readonly #buffer: TaskLogBuffer;
  readonly #options: TaskLogSenderOptions;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: TaskLogSenderOptions) {
    this.#options = options;
    this.#buffer = new TaskLogBuffer(options);
  }

  /** Lines held, not yet sent. */
  get pendingLines(): number {
    return this.#buffer.size;
  }

  /** One JSON record ctx.logger wrote for this attempt. */
  line(lease: Pick<LeaseRef, "taskId" | "attempt" | "token">, json: string): void {
    this.#buffer.add(lease, json);
    this.#schedule(this.#buffer.bytes >= MESSAGE_BYTES ? 0 : (this.#options.windowMs ?? 200));
  }

  /** The attempt ended: its remaining lines go now, ahead of its result (or wait for a stream). */
  beforeResult(taskId: string, attempt: number): void {
    if (!this.#options.open()) return;
    for (const a of this.#buffer.takeAttempt(taskId, attempt, MESSAGE_BYTES)) this.#options.send(message([a]));
  }

  /** A stream came up: send what waited. */
  connected(): void {
    this.#schedule(0);
  }

  /** Sends what the stream takes now. */
  flush(): void {
    while (this.#buffer.hasPending && this.#options.ready()) {
      if (!this.#options.send(message(this.#buffer.take(MESSAGE_BYTES)))) return;
    }
    // Backed up: try again later; the buffer drops its oldest lines meanwhile if it must.
    if (this.#buffer.hasPending) this.#schedule(this.#options.windowMs ?? 200);
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(ms: number): void {
    if (this.#timer) {
      if (ms > 0) return;
      clearTimeout(this.#timer);
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.flush();
    }, ms);
    this.#timer.unref?.();
  }
}

function message(attempts: AttemptLines[]): WorkRequest {
  return create(WorkRequestSchema, {
    message: {
      case: "taskLogs",
      value: {
        attempts: attempts.map((a) =>
          create(AttemptLogsSchema, {
            lease: { taskId: a.lease.taskId, attempt: a.lease.attempt, token: a.lease.token },
            lines: a.lines.map(toLogEntry).filter((e) => e !== undefined),
            droppedCount: a.droppedCount,
          }),
        ),
      },
    },
  });
}
