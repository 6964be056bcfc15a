// Runs one assigned task: finds its class, decodes the input, calls execute(ctx) and turns what
// happened into the outcome the runner reports.
import { runInAttemptSpan } from "./task-trace.js";
import type { ProgressIndicator, TaskEnvelope, TaskOutput } from "@corral/proto";
import { createJobCache, type CacheBackend, type JobCache } from "../cache.js";
import { UnrecoverableTaskError } from "../errors.js";
import { ExecutionContext } from "../execution-context.js";
import { identifierMatches, parseVersion, type TaskIdentifierInit } from "../identifier.js";
import type { Logger } from "../logger.js";
import { instantiateTask, taskIdentifier, type Task, type TaskClass } from "../task.js";
import type { TaskOutcome } from "./runner-state.js";
import type { ScriptPolicy } from "../tasks/script-policy.js";
import { encodeOutput, failureOutputOf, maxOutputBytesFromEnv } from "../task-output.js";
import { createTaskLogger } from "./task-log-capture.js";
import type { AttemptAbort } from "./attempt-abort.js";

const maxErrorBytes = 60 * 1024;
/** Identifiers a registry remembers its answer for (a broker sends only what the runner registered, but anything may be asked). */
const MAX_RESOLVED = 1024;

/** The task classes a runner serves, looked up by the identifier-matching rule. */
export class TaskRegistry {
  readonly #entries: Array<{ id: TaskIdentifierInit; cls: TaskClass }> = [];
  /** Answers by `name@version` requested (a runner sees few identifiers, each many times). */
  readonly #resolved = new Map<string, TaskClass | undefined>();

  constructor(classes: Iterable<TaskClass>) {
    for (const cls of classes) {
      const id = taskIdentifier(cls);
      const clash = this.#entries.find((e) => e.id.name === id.name && e.id.version === id.version);
      if (clash && clash.cls !== cls) {
        throw new Error(`two task classes register ${id.name}@${id.version}: ${clash.cls.name} and ${cls.name}`);
      }
      if (!clash) this.#entries.push({ id, cls });
    }
    if (this.#entries.length === 0) throw new Error("a runner needs at least one task class");
  }

  get identifiers(): TaskIdentifierInit[] {
    return this.#entries.map((e) => ({ ...e.id }));
  }

  /** The class for a requested identifier: same name and major, the highest registered minor >= requested. */
  resolve(requested: TaskIdentifierInit): TaskClass | undefined {
    const key = `${requested.name}@${requested.version}`;
    if (this.#resolved.has(key)) return this.#resolved.get(key);
    const cls = this.#find(requested);
    if (this.#resolved.size >= MAX_RESOLVED) this.#resolved.clear();
    this.#resolved.set(key, cls);
    return cls;
  }

  #find(requested: TaskIdentifierInit): TaskClass | undefined {
    let best: { minor: number; cls: TaskClass } | undefined;
    for (const e of this.#entries) {
      if (!identifierMatches(e.id, requested)) continue;
      const minor = parseVersion(e.id.version).minor;
      if (!best || minor > best.minor) best = { minor, cls: e.cls };
    }
    return best?.cls;
  }
}

export interface ExecuteTaskOptions {
  envelope: TaskEnvelope;
  attempt: number;
  registry: TaskRegistry;
  cache: CacheBackend;
  logger: Logger;
  /** Tells the attempt to stop; the task's `ctx.signal` is its signal. */
  abort: AttemptAbort;
  scripts?: ScriptPolicy;
  /** The largest output sent (default CORRAL_MAX_OUTPUT_BYTES or 1 MiB); over it the task fails. */
  maxOutputBytes?: number;
  /** Collects ctx.logger's JSON records (the runner sends them as the attempt's task log). */
  onLog?: (line: string) => void;
  /** Live progress: called on each change with a reader of the task's progress and display so far. */
  onProgress?: ProgressListener;
}

/** What a task's progress and display are now. */
export interface ProgressSnapshot {
  progress: ProgressIndicator[];
  display: string;
}

/** Told that a running task's progress or display changed; `read` gives them (call it later, not per change). */
export type ProgressListener = (read: () => ProgressSnapshot) => void;

/** Describes an error for the task's record: its stack (or message), cause included, bounded. */
export function describeError(err: unknown): string {
  let text: string;
  if (err instanceof Error) {
    text = err.stack ?? `${err.name}: ${err.message}`;
    if (err.cause !== undefined) text += `\ncaused by: ${describeError(err.cause)}`;
  } else {
    text = String(err);
  }
  // An error may quote anything (binary data, a bad decode): the broker refuses a NUL or a lone
  // surrogate, so both become U+FFFD rather than costing the result.
  text = (text.replaceAll("\u0000", "\ufffd") as string & { toWellFormed(): string }).toWellFormed();
  const bytes = new TextEncoder().encode(text);
  return bytes.length <= maxErrorBytes ? text : new TextDecoder().decode(bytes.slice(0, maxErrorBytes)) + "…";
}

function describeReason(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason);
}

export async function executeTask(options: ExecuteTaskOptions): Promise<TaskOutcome> {
  const env = options.envelope;
  const identifier = env.identifier!;
  const cls = options.registry.resolve(identifier);
  if (!cls) {
    return {
      kind: "failed",
      error: `this runner has no task registered for ${identifier.name}@${identifier.version}`,
      unrecoverable: false,
      countsAsRetry: false,
      display: "",
      progress: [],
    };
  }
  const logger = lazyTaskLogger(options);
  let task: Task<unknown>;
  try {
    task = instantiateTask(cls, env.input);
  } catch (err) {
    // The same bytes will never decode: retrying cannot help.
    return {
      kind: "failed",
      error: `cannot decode the input of ${identifier.name}@${identifier.version}: ${describeError(err)}`,
      unrecoverable: true,
      countsAsRetry: true,
      display: "",
      progress: [],
    };
  }
  // What is made per attempt only when the task uses it (the signal, the logger, the cache) is
  // given as a function; so is anything the task may call, made by a factory here rather than
  // declared inline, so that no function name is defined on it per attempt.
  const ctx: ExecutionContext = new ExecutionContext({
    job: { id: env.jobId, name: env.jobName },
    task: {
      id: env.taskId,
      attempt: options.attempt,
      display: env.display,
      parentId: env.parentId,
      clusterSlug: env.clusterSlug,
      retryCount: env.retryCount,
      maxRetries: env.maxRetries,
      traceparent: env.traceparent,
    },
    signal: signalOf(options.abort),
    logger,
    cache: lazyJobCache(options.cache, env.jobId),
    scripts: options.scripts,
    dependencyOutputs: env.dependencyOutputs,
    dependencyOutputsOmitted: env.dependencyOutputsOmitted,
    onProgress: options.onProgress ? progressNotice(options.onProgress, () => ctx) : undefined,
  });
  try {
    const value: unknown = await runInAttemptSpan(env.traceparent, () => task.execute(ctx));
    const r = ctx.result;
    let output;
    try {
      output = encodeOutput(value, options.maxOutputBytes ?? maxOutputBytesFromEnv());
    } catch (err) {
      // The same code returns the same output: retrying cannot help.
      logger().warn({ err }, "task output refused");
      return { kind: "failed", error: describeError(err), unrecoverable: true, countsAsRetry: true, display: r.display ?? "", progress: r.progress };
    }
    return { kind: "completed", display: r.display ?? "", subtasks: r.subtasks, progress: r.progress, output };
  } catch (err) {
    const r = ctx.result;
    const unrecoverable = err instanceof UnrecoverableTaskError || (err as Error | undefined)?.name === "UnrecoverableTaskError";
    if (options.abort.aborted) logger().info({ reason: describeReason(options.abort.reason) }, "task stopped");
    else logger().warn({ err }, "task failed");
    const output = failedOutput(err, options.maxOutputBytes ?? maxOutputBytesFromEnv(), logger);
    return { kind: "failed", error: describeError(err), unrecoverable, countsAsRetry: true, display: r.display ?? "", progress: r.progress, output };
  }
}

/** The attempt's logger, made when the task first logs (a child logger serializes its bindings when made). */
function lazyTaskLogger(options: ExecuteTaskOptions): () => Logger {
  let child: Logger | undefined;
  return () => {
    if (child) return child;
    const env = options.envelope;
    const bindings = { jobId: env.jobId, taskId: env.taskId, attempt: options.attempt, task: env.identifier!.name };
    return (child = options.onLog ? createTaskLogger(options.logger, bindings, options.onLog) : options.logger.child(bindings));
  };
}

function signalOf(abort: AttemptAbort): () => AbortSignal {
  return () => abort.signal;
}

function lazyJobCache(backend: CacheBackend, jobId: string): () => JobCache {
  return () => createJobCache(backend, jobId);
}

/** Tells `listener` that the task's progress or display changed, with a reader of them. */
function progressNotice(listener: ProgressListener, ctx: () => ExecutionContext): () => void {
  return () => listener(() => progressSnapshot(ctx()));
}

function progressSnapshot(ctx: ExecutionContext): ProgressSnapshot {
  const r = ctx.result;
  return { progress: r.progress, display: r.display ?? "" };
}

/** What the error of a failed attempt carries to store as its output; none when it cannot be stored (the error says enough). */
function failedOutput(err: unknown, maxBytes: number, logger: () => Logger): TaskOutput | undefined {
  try {
    return encodeOutput(failureOutputOf(err), maxBytes);
  } catch (e) {
    logger().warn({ err: e }, "failed task's output not stored");
    return undefined;
  }
}
