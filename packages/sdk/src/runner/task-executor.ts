// Where a runner's tasks run: in its own process (a direct runner's task classes) or forwarded to
// the child processes of release versions (a release runner). The Runner keeps the protocol; an
// executor only knows identifiers and runs tasks.
import type { Assign } from "@corral/proto";
import type { CacheBackend } from "../cache.js";
import type { TaskIdentifierInit } from "../identifier.js";
import type { Logger } from "../logger.js";
import type { ScriptPolicy } from "../tasks/script-policy.js";
import { maxOutputBytesFromEnv } from "../task-output.js";
import type { AttemptAbort } from "./attempt-abort.js";
import { executeTask, TaskRegistry, type ProgressListener } from "./execute-task.js";
import type { TaskOutcome } from "./runner-state.js";

/** What a running attempt tells, to executors that can pass it on. */
export interface AttemptListeners {
  /** ctx.logger's JSON records, for the attempt's task log. */
  onLog?: (line: string) => void;
  /** The task's progress or display changed; reads them as they are now. */
  onProgress?: ProgressListener;
}

export interface TaskExecutor {
  /** What the runner registers now. */
  identifiers(): TaskIdentifierInit[];
  /** True when a task of this identifier can start here now. */
  canRun(identifier: TaskIdentifierInit): boolean;
  /**
   * Runs one assigned task to its outcome (never rejects for the task's own errors); `abort` says
   * when it must stop (its `signal`, made when first read). An executor that can tells `listeners`
   * what the attempt logs and how its progress moves while it runs.
   */
  execute(key: string, assign: Assign, abort: AttemptAbort, listeners?: AttemptListeners): Promise<TaskOutcome>;
}

/** The direct runner's executor: the task classes it was given, run in this process. */
export class DirectExecutor implements TaskExecutor {
  readonly registry: TaskRegistry;
  readonly #cache: CacheBackend;
  readonly #logger: Logger;
  readonly #scripts: ScriptPolicy;
  readonly #maxOutputBytes = maxOutputBytesFromEnv();

  constructor(options: { registry: TaskRegistry; cache: CacheBackend; logger: Logger; scripts: ScriptPolicy }) {
    this.registry = options.registry;
    this.#cache = options.cache;
    this.#logger = options.logger;
    this.#scripts = options.scripts;
  }

  identifiers(): TaskIdentifierInit[] {
    return this.registry.identifiers;
  }

  canRun(identifier: TaskIdentifierInit): boolean {
    return this.registry.resolve(identifier) !== undefined;
  }

  execute(_key: string, assign: Assign, abort: AttemptAbort, listeners: AttemptListeners = {}): Promise<TaskOutcome> {
    return executeTask({
      envelope: assign.task!,
      attempt: assign.lease!.attempt,
      registry: this.registry,
      cache: this.#cache,
      logger: this.#logger,
      abort,
      scripts: this.#scripts,
      maxOutputBytes: this.#maxOutputBytes,
      onLog: listeners.onLog,
      onProgress: listeners.onProgress,
    });
  }
}
