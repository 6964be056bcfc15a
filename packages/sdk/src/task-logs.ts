// client.jobs().logs(): the lines a job's tasks wrote with ctx.logger, as stored per attempt, or
// followed as they arrive until the job ends.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { createClient, type Client as RpcClient, type Transport } from "@connectrpc/connect";
import { LogLevel, TaskLogService, type TaskLogLine as TaskLogLineMessage } from "@corral/proto";
import { rpc, toApiError } from "./errors.js";

export type TaskLogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal";

/** One stored line of a task attempt's log. */
export interface TaskLogLine {
  /** Orders the job's lines; pass it as `after` to read on from it. */
  cursor: string;
  taskId: string;
  /** The task's identifier name. */
  taskName: string;
  attempt: number;
  time: Date;
  level: TaskLogLevel;
  message: string;
  /** The line's other fields (what was passed to the logger besides the message). */
  fields: Record<string, unknown>;
  /** Above 0: this line is the marker standing for that many dropped lines. */
  droppedCount: number;
}

export interface TaskLogOptions {
  /** Only this task's lines (a task id). */
  task?: string;
  /** Only this attempt of `task`. */
  attempt?: number;
  /** Lines after this cursor. */
  after?: string;
  /** Keep reading new lines as they arrive, until the job ends. */
  follow?: boolean;
  signal?: AbortSignal;
}

const levels: Record<number, TaskLogLevel> = {
  [LogLevel.TRACE]: "trace",
  [LogLevel.DEBUG]: "debug",
  [LogLevel.INFO]: "info",
  [LogLevel.WARN]: "warn",
  [LogLevel.ERROR]: "error",
  [LogLevel.FATAL]: "fatal",
};

function fieldsOf(json: string): Record<string, unknown> {
  if (json === "") return {};
  try {
    return JSON.parse(json) as Record<string, unknown>;
  } catch {
    return { fields: json };
  }
}

export function toTaskLogLine(m: TaskLogLineMessage): TaskLogLine {
  const l = m.line;
  return {
    cursor: m.cursor,
    taskId: m.taskId,
    taskName: m.taskName,
    attempt: m.attempt,
    time: l?.time ? timestampDate(l.time) : new Date(0),
    level: levels[l?.level ?? LogLevel.INFO] ?? "info",
    message: l?.message ?? "",
    fields: fieldsOf(l?.fieldsJson ?? ""),
    droppedCount: m.droppedCount,
  };
}

export class TaskLogReader {
  readonly #rpc: RpcClient<typeof TaskLogService>;

  constructor(transport: Transport) {
    this.#rpc = createClient(TaskLogService, transport);
  }

  async *read(jobId: string, options: TaskLogOptions = {}): AsyncGenerator<TaskLogLine> {
    if (options.follow) {
      yield* this.#follow(jobId, options);
      return;
    }
    let cursor = options.after ?? "";
    for (;;) {
      const page = await rpc(() =>
        this.#rpc.listTaskLogs(
          { jobId, taskId: options.task ?? "", attempt: options.attempt ?? 0, afterCursor: cursor, limit: 1000 },
          { signal: options.signal },
        ),
      );
      for (const l of page.lines) yield toTaskLogLine(l);
      cursor = page.nextCursor;
      if (!page.more) return;
    }
  }

  async *#follow(jobId: string, options: TaskLogOptions): AsyncGenerator<TaskLogLine> {
    // A caller that stops early must not leave the HTTP/2 stream (and the process) open: the call
    // is aborted unless it ended.
    const done = new AbortController();
    const outer = options.signal;
    const forward = () => done.abort(outer?.reason);
    if (outer?.aborted) forward();
    else outer?.addEventListener("abort", forward, { once: true });
    let ended = false;
    try {
      const stream = this.#rpc.followJobLogs({ jobId, taskId: options.task ?? "", afterCursor: options.after ?? "" }, { signal: done.signal });
      for await (const msg of stream) {
        for (const l of msg.lines) {
          if (options.attempt && l.attempt !== options.attempt) continue;
          yield toTaskLogLine(l);
        }
      }
      ended = true;
    } catch (err) {
      ended = true;
      throw toApiError(err);
    } finally {
      outer?.removeEventListener("abort", forward);
      if (!ended) done.abort();
    }
  }
}
