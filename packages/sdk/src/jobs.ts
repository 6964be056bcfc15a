// client.jobs(): submit jobs and follow them.
import { clone, isMessage } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, createClient, type Client as RpcClient, type Transport } from "@connectrpc/connect";
import {
  GraphDirection,
  GraphTheme,
  JobService,
  JobState,
  NodeService,
  TaskState,
  type Node,
  TaskSubmissionSchema,
  type GetJobProgressResponse,
  type Job,
  type Task as TaskRecord,
  type TaskSubmission,
  type VisualizeJobResponse,
  type WatchJobResponse,
} from "@corral/proto";
import { ApiError, JobCanceledError, JobFailedError, TaskFailedError, rpc, toApiError } from "./errors.js";
import { isTerminalJobState, jobStates, taskStates, type JobStateName, type TaskStateName } from "./job-states.js";
import { collectPages } from "./paginate.js";
import {
  gateFields,
  schedulingFields,
  taskDefaultsMessage,
  type DurationInput,
  type SchedulingOptions,
  type TaskRetryOptions,
} from "./scheduling.js";
import { waitingReasons, type WaitingReason } from "./job-diagnosis.js";
import { formatIdentifier } from "./identifier.js";
import { printableJob, printableTask, printableUpdate } from "./printable.js";
import { toTaskSubmission, type SubmissionOptions } from "./submission.js";
import { Task, type OutputOf } from "./task.js";
import { decodeOutput } from "./task-output.js";
import { toTaskSpan, traceHeaders, type JobTrace } from "./job-spans.js";
import { backoffDelay, sleep } from "./transport.js";
import { TaskLogReader, type TaskLogLine, type TaskLogOptions } from "./task-logs.js";

/** Errors after which wait() looks at the job again instead of giving up. */
const followUpCodes = new Set([Code.Unavailable, Code.Internal, Code.Unknown, Code.DeadlineExceeded, Code.Unimplemented]);

export interface SubmitJobOptions {
  /** The cluster the root tasks run on; empty: the team's default cluster. */
  cluster?: string;
  /** Retries of each root task (default 0). */
  maxRetries?: number;
  /** Repeating a submission with the same key returns the first job instead of a new one. */
  idempotencyKey?: string;
  /** Timeout of each attempt of every task of the job (subtasks too) that sets none. */
  timeout?: DurationInput;
  /** How long any task of the job may wait for a runner before it fails (unless it sets its own). */
  scheduleToStartTimeout?: DurationInput;
  /** Backoff of every task of the job that sets none; `max` sets the root tasks' retries. */
  retry?: TaskRetryOptions;
  /** The root tasks start no earlier than this. */
  notBefore?: Date;
  /** The root tasks start no earlier than this long after submission. */
  delay?: DurationInput;
  /** Priority of the root tasks, 0 (default) to 9. */
  priority?: number;
  /** Concurrency key of the root tasks (see SchedulingOptions.concurrency). */
  concurrency?: SchedulingOptions["concurrency"];
  concurrencyKey?: string;
  /** Rate limit of the root tasks' starts. */
  rateLimit?: SchedulingOptions["rateLimit"];
  /**
   * The span the job continues (W3C traceparent): its root tasks' spans become children of it.
   * Default: the active OpenTelemetry span, when the process has a propagator registered.
   */
  traceparent?: string;
}

export interface JobQuery {
  states?: JobStateName[];
  /** Jobs whose name contains this text. */
  name?: string;
  clusters?: string[];
  /** Jobs an automation submitted. */
  automation?: string;
  /** Jobs with at least one task in one of these states. */
  taskStates?: TaskStateName[];
  /** Submitted at or after. */
  since?: Date;
  /** Submitted before. */
  until?: Date;
  /** Oldest first (default newest first). */
  ascending?: boolean;
  /** Sort direction by submission: "asc" (oldest first) or "desc" (newest first, the default); wins over `ascending`. */
  order?: "asc" | "desc";
  /** Jobs whose id is at least this (ids are time-ordered: a job id range is a submit-time range). */
  idFrom?: string;
  /** Jobs whose id is below this. */
  idTo?: string;
  /** At most this many jobs (default 100). */
  limit?: number;
}

export interface JobUpdate {
  job: Job;
  changedTasks: TaskRecord[];
}

export interface WaitOptions {
  /** Called with every change of the job's state or progress. */
  onProgress?: (update: JobUpdate) => void;
  signal?: AbortSignal;
}

/** Tasks a diagnosis reads at most: enough for the jobs a person looks at by hand. */
const diagnosisTaskLimit = 5000;

export class JobClient {
  readonly #rpc: RpcClient<typeof JobService>;
  readonly #nodes: RpcClient<typeof NodeService>;
  readonly #logs: TaskLogReader;

  constructor(transport: Transport) {
    this.#rpc = createClient(JobService, transport);
    this.#nodes = createClient(NodeService, transport);
    this.#logs = new TaskLogReader(transport);
  }

  /**
   * The lines the job's tasks wrote with ctx.logger, each attempt's in order (bounded per
   * attempt: a marker line with `droppedCount` stands for the oldest lines dropped). With
   * `follow`, new lines come as they are stored until the job ends.
   *
   * @example
   * for await (const line of client.jobs().logs(job.id, { follow: true })) {
   *   console.log(line.time.toISOString(), line.level, line.taskName, line.message, line.fields);
   * }
   */
  logs(id: string, options: TaskLogOptions = {}): AsyncGenerator<TaskLogLine> {
    return this.#logs.read(id, options);
  }

  /**
   * Why the job's queued tasks do not start: a cluster with no online runner, or a task class
   * no online runner there serves. Empty when every queued task has a runner that could take it
   * (it then waits for a free slot or its dependencies).
   *
   * @example
   * for (const r of await client.jobs().whyWaiting(job.id)) console.log(r.message);
   * // no online runner on cluster gpu-farm-CvufcSxcC9SKfe serves my/Leaf@v1.0
   */
  async whyWaiting(id: string): Promise<WaitingReason[]> {
    // The server says it (GetJob's wait_reasons, from the broker's live sessions); a server that
    // gives none is asked the long way: the queued tasks against the registry's running nodes.
    const job = await this.find(id);
    if (job.waitReasons.length > 0) {
      return job.waitReasons.map((r) => ({
        clusterSlug: r.clusterSlug,
        identifier: r.identifier ? formatIdentifier(r.identifier) : undefined,
        tasks: r.tasks,
        message: r.message,
      }));
    }
    if ((job.stats?.tasksByState?.queued ?? 1) === 0) return [];
    const queued = (await this.#allTasks(id)).filter((t) => t.state === TaskState.QUEUED);
    const runners = new Map<string, Node[]>();
    for (const slug of new Set(queued.map((t) => t.clusterSlug))) {
      const res = await rpc(() => this.#nodes.listRunningNodes({ clusterSlug: slug }));
      runners.set(slug, res.nodes);
    }
    return waitingReasons(queued, runners);
  }

  /**
   * The job's FAILED tasks (at any depth), for saying why a job failed.
   *
   * @example
   * for (const t of await client.jobs().failedTasks(job.id)) console.log(t.id, t.attempt, t.error);
   */
  async failedTasks(id: string): Promise<TaskRecord[]> {
    return (await this.#allTasks(id)).filter((t) => t.state === TaskState.FAILED);
  }

  /** The task tree breadth first, up to `diagnosisTaskLimit` tasks. */
  async #allTasks(id: string): Promise<TaskRecord[]> {
    const out: TaskRecord[] = [];
    const parents: string[] = [""];
    while (parents.length > 0 && out.length < diagnosisTaskLimit) {
      const level = await this.tasks(id, { parentId: parents.shift()! });
      out.push(...level);
      for (const t of level) if (t.subtaskCount > 0) parents.push(t.id);
    }
    return out.slice(0, diagnosisTaskLimit);
  }

  /**
   * Submits a job of one or more root tasks.
   *
   * @example
   * const job = await client.jobs().submit("multi", new MultiCluster(), { cluster: "testing-CvufcSxcC9SKfe" });
   */
  async submit(
    name: string,
    tasks: Task<unknown> | TaskSubmission | Array<Task<unknown> | TaskSubmission>,
    options: SubmitJobOptions = {},
  ): Promise<Job> {
    const list = Array.isArray(tasks) ? tasks : [tasks];
    const submissions = list.map((t) => {
      // A TaskSubmission message carries its type name; anything else is a task instance.
      if (t instanceof Task || !isMessage(t, TaskSubmissionSchema)) {
        return toTaskSubmission(t as Task<unknown>, {
          maxRetries: options.maxRetries ?? options.retry?.max,
          notBefore: options.notBefore,
          delay: options.delay,
          priority: options.priority,
          concurrency: options.concurrency,
          concurrencyKey: options.concurrencyKey,
          rateLimit: options.rateLimit,
        });
      }
      const s = clone(TaskSubmissionSchema, t);
      const maxRetries = options.maxRetries ?? options.retry?.max;
      if (maxRetries !== undefined && s.maxRetries === 0) s.maxRetries = maxRetries;
      const start = schedulingFields({ notBefore: options.notBefore, delay: options.delay, priority: options.priority });
      s.notBefore ??= start.notBefore;
      s.startDelay ??= start.startDelay;
      if (s.priority === 0) s.priority = start.priority;
      const gate = gateFields({ concurrency: options.concurrency, concurrencyKey: options.concurrencyKey, rateLimit: options.rateLimit });
      s.concurrency ??= gate.concurrency;
      s.rateLimit ??= gate.rateLimit;
      return s;
    });
    const taskDefaults = taskDefaultsMessage(options);
    const headers = traceHeaders(options.traceparent);
    const res = await rpc(() =>
      this.#rpc.submitJob(
        {
          name,
          clusterSlug: options.cluster ?? "",
          tasks: submissions,
          idempotencyKey: options.idempotencyKey ?? "",
          taskDefaults,
        },
        headers ? { headers } : undefined,
      ),
    );
    return printableJob(res.job!);
  }

  /**
   * The job's trace: one span per task attempt (queued, started and ended times, runner, outcome),
   * each a child of its parent task's attempt. Throws JobNotFoundError when there is none.
   *
   * @example
   * const { traceId, spans } = await client.jobs().spans(job.id);
   * for (const s of spans) console.log(s.identifier.name, s.attempt, s.outcome);
   */
  async spans(id: string): Promise<JobTrace> {
    let traceId = "";
    let parentSpanId = "";
    const spans = await collectPages(async (pageToken) => {
      const res = await rpc(() => this.#rpc.getJobSpans({ jobId: id, pageSize: 1000, pageToken }));
      traceId = res.traceId;
      parentSpanId = res.parentSpanId;
      return { items: res.spans.map(toTaskSpan), nextPageToken: res.nextPageToken };
    });
    return { jobId: id, traceId, parentSpanId, spans };
  }

  /** Throws JobNotFoundError when there is none. */
  async find(id: string): Promise<Job> {
    const res = await rpc(() => this.#rpc.getJob({ jobId: id }));
    return printableJob(res.job!);
  }

  /**
   * Jobs of the team matching every given filter, newest first.
   *
   * @example
   * const failed = await client.jobs().query({ states: ["failed"], since: new Date(Date.now() - 86400e3) });
   */
  async query(filters: JobQuery = {}): Promise<Job[]> {
    const limit = filters.limit ?? 100;
    return collectPages(async (pageToken) => {
      const res = await rpc(() =>
        this.#rpc.queryJobs({
          states: (filters.states ?? []).map((s) => jobStates[s]),
          name: filters.name ?? "",
          clusterSlugs: filters.clusters ?? [],
          automationId: filters.automation ?? "",
          taskStates: (filters.taskStates ?? []).map((s) => taskStates[s]),
          startTime: filters.since ? timestampFromDate(filters.since) : undefined,
          endTime: filters.until ? timestampFromDate(filters.until) : undefined,
          ascending: filters.order ? filters.order === "asc" : (filters.ascending ?? false),
          idFrom: filters.idFrom ?? "",
          idTo: filters.idTo ?? "",
          pageSize: Math.min(1000, Math.max(1, limit)),
          pageToken,
        }),
      );
      return { items: res.jobs.map(printableJob), nextPageToken: res.nextPageToken };
    }, limit);
  }

  /** One task of the job, with its input and its output (see `decodeOutput`). */
  async task(jobId: string, taskId: string): Promise<TaskRecord> {
    const res = await rpc(() => this.#rpc.getTask({ jobId, taskId }));
    return res.task!;
  }

  /**
   * Waits for the job and returns its result: the output of its (first) root task, decoded (JSON as
   * its value, bytes as a Uint8Array, nothing as undefined). Rejects with TaskFailedError naming the
   * failing task when the job failed, JobCanceledError when it was canceled.
   *
   * @example
   * const out = await client.jobs().result<{ echoed: string }>(job.id);
   */
  async result<O = unknown>(id: string, options: WaitOptions = {}): Promise<O> {
    try {
      await this.wait(id, options);
    } catch (err) {
      if (err instanceof JobFailedError && !(err instanceof JobCanceledError)) throw await this.#taskFailure(err.job);
      throw err;
    }
    const [root] = await this.#rpc.listTasks({ jobId: id, pageSize: 1, includeOutput: true }).then((r) => r.tasks, (e: unknown) => {
      throw toApiError(e);
    });
    return decodeOutput(root?.output) as O;
  }

  /**
   * Submits a job of one task, waits for it and returns the task's output, typed from its class
   * (`Task<Input, Output>`): Mindtrace's `submit_job` in one call.
   *
   * @example
   * const { echoed } = await client.jobs().run("hello", new Echo({ message: "hi" }));
   */
  async run<T extends Task<any, any>>(name: string, task: T, options: SubmitJobOptions & WaitOptions = {}): Promise<OutputOf<T>> {
    const job = await this.submit(name, task, options);
    return this.result<OutputOf<T>>(job.id, options);
  }

  /** The failed task of a failed job, found breadth-first from the roots (bounded), as a TaskFailedError. */
  async #taskFailure(job: Job): Promise<JobFailedError> {
    let level = await this.tasks(job.id);
    for (let depth = 0; depth < 32 && level.length > 0; depth++) {
      const failed = level.find((t) => t.state === TaskState.FAILED);
      if (failed) {
        // A parent whose subtree failed may itself be computed: look below it first.
        // Its own record for the failed attempt's output (a listing with outputs would carry every task's).
        const full = await this.task(job.id, failed.id);
        const output = full.outputAttempt === failed.attempt ? decodeOutput(full.output) : undefined;
        return new TaskFailedError(job, { id: failed.id, attempt: failed.attempt, error: failed.error, output });
      }
      const next: TaskRecord[] = [];
      for (const t of level) if (t.subtaskCount > 0 && next.length < 10_000) next.push(...(await this.tasks(job.id, { parentId: t.id })));
      level = next;
    }
    return new JobFailedError(job);
  }

  /** One level of the job's task tree: the roots, or the subtasks of `parentId`. */
  async tasks(id: string, options: { parentId?: string; includeInput?: boolean; includeOutput?: boolean } = {}): Promise<TaskRecord[]> {
    return collectPages(async (pageToken) => {
      const res = await rpc(() =>
        this.#rpc.listTasks({
          jobId: id,
          parentId: options.parentId ?? "",
          includeInput: options.includeInput ?? false,
          includeOutput: options.includeOutput ?? false,
          pageSize: 1000,
          pageToken,
        }),
      );
      return { items: res.tasks.map(printableTask), nextPageToken: res.nextPageToken };
    });
  }

  /** Queued tasks never start, running tasks are told to stop. */
  async cancel(id: string): Promise<Job> {
    const res = await rpc(() => this.#rpc.cancelJob({ jobId: id }));
    return printableJob(res.job!);
  }

  /**
   * Submits the job's root tasks again as a new job (same identifiers, inputs, retries and
   * scheduling), on the clusters they were on or on `cluster`.
   *
   * @example
   * const again = await client.jobs().clone(job.id, { cluster: "gpu-farm-CvufcSxcC9SKfe" });
   */
  async clone(id: string, options: { cluster?: string; name?: string } = {}): Promise<Job> {
    const res = await rpc(() => this.#rpc.cloneJob({ jobId: id, clusterSlug: options.cluster ?? "", name: options.name ?? "" }));
    return printableJob(res.job!);
  }

  /** Re-queues the failed and canceled tasks; answers how many. */
  async retry(id: string): Promise<{ rescheduled: number; job: Job }> {
    const res = await rpc(() => this.#rpc.retryJob({ jobId: id }));
    return { rescheduled: res.rescheduledCount, job: printableJob(res.job!) };
  }

  async progress(id: string): Promise<GetJobProgressResponse> {
    return rpc(() => this.#rpc.getJobProgress({ jobId: id }));
  }

  /**
   * The task graph as SVG, Mermaid and DOT text: flowing `down` (default) or `right`, in a `light`
   * (default) or `dark` palette, with the job's name as its title when `includeJobName`.
   *
   * @example
   * const { svg } = await client.jobs().visualize(job.id, { direction: "right", theme: "dark", includeJobName: true });
   */
  async visualize(
    id: string,
    options: { maxTasks?: number; direction?: "down" | "right"; theme?: "light" | "dark"; includeJobName?: boolean } = {},
  ): Promise<VisualizeJobResponse> {
    return rpc(() =>
      this.#rpc.visualizeJob({
        jobId: id,
        maxTasks: options.maxTasks ?? 0,
        direction: options.direction === "right" ? GraphDirection.LEFT_RIGHT : options.direction === "down" ? GraphDirection.TOP_DOWN : GraphDirection.UNSPECIFIED,
        theme: options.theme === "dark" ? GraphTheme.DARK : options.theme === "light" ? GraphTheme.LIGHT : GraphTheme.UNSPECIFIED,
        includeJobName: options.includeJobName ?? false,
      }),
    );
  }

  /**
   * The job's changes as they happen; ends when the job ends.
   *
   * @example
   * for await (const { job } of client.jobs().watch(id)) console.log(job.state);
   */
  async *watch(id: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<WatchJobResponse> {
    // A caller may stop iterating early (wait() does, on the terminal update). Node keeps an HTTP/2
    // stream whose response was not read to its end open, and with it the connection and the
    // process; connect's iterator return() does not help. So: after a terminal update the server
    // ends the stream at once, and the rest is read here; otherwise the call is aborted.
    const done = new AbortController();
    const outer = options.signal;
    const forward = () => done.abort(outer?.reason);
    if (outer?.aborted) forward();
    else outer?.addEventListener("abort", forward, { once: true });
    const responses = this.#rpc.watchJob({ jobId: id }, { signal: done.signal })[Symbol.asyncIterator]();
    let ended = false;
    let terminal = false;
    try {
      for (;;) {
        const next = await responses.next();
        if (next.done) {
          ended = true;
          return;
        }
        terminal = next.value.job !== undefined && isTerminalJobState(next.value.job.state);
        yield printableUpdate(next.value);
      }
    } catch (err) {
      ended = true;
      throw toApiError(err);
    } finally {
      outer?.removeEventListener("abort", forward);
      if (!ended && terminal && !done.signal.aborted) {
        const timer = setTimeout(() => done.abort(), 5_000);
        try {
          while (!(await responses.next()).done);
        } catch {
          // aborted or dropped: nothing more to read either way
        } finally {
          clearTimeout(timer);
        }
      }
      done.abort();
    }
  }

  /**
   * Waits for the job to end: resolves with it when it completed, throws JobFailedError when it
   * failed (JobCanceledError when canceled). Survives dropped streams and restarting services.
   *
   * @example
   * const job = await client.jobs().wait(id, { onProgress: ({ job }) => console.log(job.progress) });
   */
  async wait(id: string, options: WaitOptions = {}): Promise<Job> {
    const finish = (job: Job): Job => {
      if (job.state === JobState.FAILED) throw new JobFailedError(job);
      if (job.state === JobState.CANCELED) throw new JobCanceledError(job);
      return job;
    };
    for (let attempt = 0; ; attempt++) {
      options.signal?.throwIfAborted();
      try {
        for await (const update of this.watch(id, { signal: options.signal })) {
          if (!update.job) continue;
          attempt = 0;
          options.onProgress?.({ job: update.job, changedTasks: update.changedTasks });
          if (isTerminalJobState(update.job.state)) return finish(update.job);
        }
      } catch (err) {
        options.signal?.throwIfAborted();
        // A dropped stream or a restarting service: look again after a pause. Anything else
        // (not found, auth) is the caller's to see.
        // UNIMPLEMENTED (a server without WatchJob) degrades to polling GetJob.
        // CANCELED here was not the caller's doing (that threw above): a stopping server ends
        // its open streams that way.
        const retryable = err instanceof ApiError && (followUpCodes.has(err.code) || err.code === Code.Canceled);
        if (!retryable) throw err;
      }
      const job = await this.find(id);
      if (isTerminalJobState(job.state)) {
        options.onProgress?.({ job, changedTasks: [] });
        return finish(job);
      }
      await sleep(backoffDelay(Math.min(attempt, 6), 200, 5000), options.signal);
    }
  }
}
