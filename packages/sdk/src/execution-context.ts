// What a running task sees: its job and attempt, a signal, subtasks to submit with its result,
// progress, a display text, a logger and the job cache.
import { ROOT_CONTEXT, type Context } from "@opentelemetry/api";
import { attemptContext } from "./runner/task-trace.js";
import type { DependencyOutput, TaskSubmission } from "@corral/proto";
import type { JobCache } from "./cache.js";
import { ValidationError } from "./errors.js";
import type { Logger } from "./logger.js";
import { ProgressRecorder, type Progress } from "./progress.js";
import { toTaskSubmission, type SubmissionOptions } from "./submission.js";
import { checkStorableText } from "./storable-text.js";
import { taskIdentifier, type OutputOf, type Task, type TaskClass } from "./task.js";
import { decodeOutput } from "./task-output.js";
import { scriptsDisallowed, type ScriptPolicy } from "./tasks/script-policy.js";

/** A subtask submitted from this context; pass it in `dependsOn` of later subtasks. */
export interface SubtaskHandle {
  /** Position among this task's subtasks (what `depends_on` carries). */
  readonly index: number;
  readonly task: Task<unknown>;
}

export interface SubtaskOptions extends SubmissionOptions {
  /** Earlier subtasks of this task that must be done first; may be on other clusters. */
  dependsOn?: SubtaskHandle | SubtaskHandle[];
}

export interface JobInfo {
  id: string;
  name: string;
}

export interface TaskInfo {
  id: string;
  /** The attempt this run is (fencing token); starts at 1 on most servers. */
  attempt: number;
  display: string;
  /** Empty for a root task. */
  parentId: string;
  clusterSlug: string;
  retryCount: number;
  maxRetries: number;
  /**
   * This attempt's span in its job's trace, as a W3C traceparent (empty from a server without
   * traces). Spans task code starts are its children: automatically when the process registered an
   * OpenTelemetry tracer provider, else pass `ctx.traceContext()` as the parent.
   */
  traceparent?: string;
}

export interface ExecutionContextInit {
  job: JobInfo;
  task: TaskInfo;
  /** The attempt's signal, or a function making it when the task first asks. */
  signal: AbortSignal | (() => AbortSignal);
  /** The task's logger, or a function making it when the task first logs. */
  logger: Logger | (() => Logger);
  /** The job's cache, or a function making it when the task first uses it. */
  cache: JobCache | (() => JobCache);
  /** What the runner lets scripts do (default: no scripts). */
  scripts?: ScriptPolicy;
  /** The outputs of the task's dependencies, as its envelope carried them. */
  dependencyOutputs?: DependencyOutput[];
  /** The envelope left them out: together they were over the server's bound. */
  dependencyOutputsOmitted?: boolean;
  /**
   * Called when the task changes its progress or display while it runs (the runner sends them,
   * throttled). Cheap to call often: it should only note that something changed.
   */
  onProgress?: () => void;
}

/** A dependency's output as a task reads it. */
export interface DependencyResult {
  taskId: string;
  identifier: { name: string; version: string };
  output: unknown;
}

const maxDisplayBytes = 1024;

export class ExecutionContext {
  readonly job: JobInfo;
  readonly task: TaskInfo;
  /** What this runner lets tasks that run commands do (corral/RunScript honours it). */
  readonly scripts: ScriptPolicy;

  readonly #subtasks: TaskSubmission[] = [];
  /** The handles this context gave out (made with the first subtask). */
  #handles: WeakSet<SubtaskHandle> | undefined;
  #signal: AbortSignal | (() => AbortSignal);
  #cache: JobCache | (() => JobCache);
  readonly #progress: ProgressRecorder;
  #display: string | undefined;
  readonly #onProgress: (() => void) | undefined;
  #logger: Logger | (() => Logger);
  readonly #dependencies: DependencyOutput[];
  readonly #dependenciesOmitted: boolean;

  constructor(init: ExecutionContextInit) {
    this.job = init.job;
    this.task = init.task;
    this.#signal = init.signal;
    this.#logger = init.logger;
    this.#cache = init.cache;
    this.scripts = init.scripts ?? scriptsDisallowed;
    this.#dependencies = init.dependencyOutputs ?? [];
    this.#dependenciesOmitted = init.dependencyOutputsOmitted ?? false;
    this.#onProgress = init.onProgress;
    this.#progress = new ProgressRecorder(init.onProgress);
  }

  /**
   * This attempt's span as an OpenTelemetry context, to parent spans on (undefined without one).
   *
   * @example
   * const span = trace.getTracer("my-tasks").startSpan("download", {}, ctx.traceContext());
   */
  traceContext(): Context | undefined {
    return this.task.traceparent ? attemptContext(this.task.traceparent, ROOT_CONTEXT) : undefined;
  }

  /**
   * The outputs of this task's dependencies (the `dependsOn` of its submission), in the order they
   * were submitted. Dependencies that returned nothing are not listed.
   *
   * @example
   * const [first, second] = ctx.dependencyOutputs().map((d) => d.output);
   */
  dependencyOutputs(): DependencyResult[] {
    this.#checkDependenciesDelivered();
    return this.#dependencies.map((d) => ({
      taskId: d.taskId,
      identifier: { name: d.identifier?.name ?? "", version: d.identifier?.version ?? "" },
      output: decodeOutput(d.output),
    }));
  }

  /**
   * The output of this task's dependency of the given class (the first, when several are), typed
   * from the class's `Task<Input, Output>`. Throws when no dependency of that class returned one.
   *
   * @example
   * class Sum extends Task<void, number> {
   *   override execute(ctx: ExecutionContext) {
   *     return ctx.outputOf(Count) + 1; // Count extends Task<..., number>
   *   }
   * }
   */
  outputOf<C extends TaskClass>(cls: C): OutputOf<InstanceType<C>> {
    this.#checkDependenciesDelivered();
    const name = taskIdentifier(cls).name;
    const dep = this.#dependencies.find((d) => d.identifier?.name === name);
    if (!dep) throw new Error(`no dependency of this task of ${name} returned an output`);
    return decodeOutput(dep.output) as OutputOf<InstanceType<C>>;
  }

  #checkDependenciesDelivered(): void {
    if (this.#dependenciesOmitted) {
      throw new Error("the outputs of this task's dependencies were over the bound an envelope carries (4 MiB together)");
    }
  }

  /** Aborted when the job is canceled, the lease is lost or the runner shuts down. */
  get signal(): AbortSignal {
    if (typeof this.#signal === "function") this.#signal = this.#signal();
    return this.#signal;
  }

  /** Bytes by key, shared by the tasks of this job (on runners sharing the cache backend). */
  get cache(): JobCache {
    if (typeof this.#cache === "function") this.#cache = this.#cache();
    return this.#cache;
  }

  get logger(): Logger {
    if (typeof this.#logger === "function") this.#logger = this.#logger();
    return this.#logger;
  }

  /**
   * Submits a subtask. It is created with this task's result and queues once this task is
   * computed (and its dependencies are done).
   *
   * @example
   * const a = ctx.submitSubtask(new Download({ url }));
   * ctx.submitSubtask(new Process({ url }), { dependsOn: [a], cluster: "gpu-As3dcSb3D9SAdK" });
   */
  submitSubtask(task: Task<unknown>, options: SubtaskOptions = {}): SubtaskHandle {
    const deps = options.dependsOn === undefined ? [] : Array.isArray(options.dependsOn) ? options.dependsOn : [options.dependsOn];
    const indices = deps.map((d) => {
      if (!this.#handles?.has(d)) {
        throw ValidationError.field("depends_on", "a dependency must be a subtask submitted earlier by this same task");
      }
      return d.index;
    });
    const submission = toTaskSubmission(task, options, [...new Set(indices)]);
    const handle: SubtaskHandle = Object.freeze({ index: this.#subtasks.length, task });
    this.#subtasks.push(submission);
    (this.#handles ??= new WeakSet()).add(handle);
    return handle;
  }

  /** Submits several subtasks with the same options. */
  submitSubtasks(tasks: Iterable<Task<unknown>>, options: SubtaskOptions = {}): SubtaskHandle[] {
    return [...tasks].map((t) => this.submitSubtask(t, options));
  }

  /**
   * A progress indicator of this job, by label.
   *
   * @example
   * const p = ctx.progress("tiles").add(files.length);
   * for (const f of files) { await work(f); p.done(); }
   */
  progress(label = ""): Progress {
    return this.#progress.get(label);
  }

  /** The text shown for this task in listings and graphs (at most 1024 bytes). */
  setDisplay(display: string): void {
    if (new TextEncoder().encode(display).length > maxDisplayBytes) {
      throw ValidationError.field("display", `is longer than ${maxDisplayBytes} bytes`);
    }
    // The broker refuses text Postgres cannot store, by ending the runner's stream: say it here,
    // where the task can see it, instead.
    checkStorableText("display", display);
    this.#display = display;
    this.#onProgress?.();
  }

  /** Throws the signal's reason when the task was told to stop. */
  throwIfAborted(): void {
    this.signal.throwIfAborted();
  }

  /** @internal What the runner reports with the result. */
  get result() {
    return { subtasks: this.#subtasks, progress: this.#progress.toProto(), display: this.#display };
  }
}
