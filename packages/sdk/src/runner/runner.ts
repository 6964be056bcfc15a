// The runner: one Work stream to the task broker, executing assigned tasks with bounded
// concurrency, reconnecting with resumed leases, draining on SIGTERM. The protocol decisions live
// in RunnerState; this file does the I/O.
import { EventEmitter } from "node:events";
import os from "node:os";
import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  HeartbeatSchema,
  RunnerKind,
  TaskBrokerService,
  WorkRequestSchema,
  type Assign,
  type WorkRequest,
  type WorkResponse,
} from "@corral/proto";
import { AsyncQueue } from "@corral/wire";
import type { CacheBackend } from "../cache.js";
import { SuiteCache } from "../suite-cache.js";
import { toApiError, UnavailableError } from "../errors.js";
import { describeConnection, resolveConnection, type Connection } from "../credentials.js";
import { createSdkLogger, type Logger } from "../logger.js";
import type { TaskClass } from "../task.js";
import { backoffDelay, createAuthInterceptor, sleep, streamKeepalive } from "../transport.js";
import { describeError, TaskRegistry } from "./execute-task.js";
import { AttemptAbort } from "./attempt-abort.js";
import { DirectExecutor, type AttemptListeners, type TaskExecutor } from "./task-executor.js";
import { detectHardware, type HardwareInput } from "./hardware.js";
import { ProgressThrottle } from "./progress-throttle.js";
import { RunnerState, type RunnerEffect, type TaskOutcome } from "./runner-state.js";
import { resolveScriptPolicy, type ScriptOptions, type ScriptPolicy } from "../tasks/script-policy.js";
import { TaskLogSender } from "./task-log-sender.js";

export const sdkVersion = "0.1.0";

/** Where a runner is in its life. */
export type RunnerLifecycle = "starting" | "running" | "draining" | "stopped" | "failed";

/**
 * Scripts (corral/RunScript) are off unless `allowScripts` is true: see {@link ScriptOptions}.
 */
export interface RunnerOptions extends ScriptOptions {
  /** Base URL of the suite (the broker's gRPC service path must route there). */
  url?: string;
  apiKey?: string;
  /** A ready gRPC-capable transport instead of one built from url and apiKey. */
  transport?: Transport;
  /** Cluster slug; empty: the team's default cluster. */
  cluster?: string;
  /** The task classes this runner serves (a direct runner); not with `executor`. */
  tasks?: TaskClass[];
  /**
   * Where tasks run instead of in this process with `tasks` (a release runner's child
   * processes). Its identifiers may change; call `reregister()` when they do.
   */
  executor?: TaskExecutor;
  /** What Hello says about where the code comes from (default: direct). */
  kind?: RunnerKind;
  /** Tasks run at once (default 1). */
  concurrency?: number;
  /**
   * Backend of ctx.cache (default: the suite's shared job cache, a {@link SuiteCache} over this
   * runner's connection; `new InMemoryCache()` keeps entries in this process only).
   */
  cache?: CacheBackend;
  labels?: Record<string, string>;
  hardware?: HardwareInput;
  /** Stable across reconnects; default hostname, pid and a random suffix. */
  runnerId?: string;
  logger?: Logger;
  /** How long running tasks may finish after stop() or SIGTERM (default 30 s). */
  drainGraceMs?: number;
  /** How long stop() waits for the broker to acknowledge the last results (default 10 s). */
  ackTimeoutMs?: number;
  /** runAll(): how long without an assignment counts as idle (default 1 s). */
  idleMs?: number;
  /** Reconnect backoff (defaults 250 ms doubling to 15 s, with jitter). */
  reconnect?: { baseDelayMs?: number; maxDelayMs?: number };
  /** Heartbeat interval when the broker's Welcome names none (default 10 s). */
  heartbeatIntervalMs?: number;
  /** Failed connection attempts in a row before the runner warns that it cannot reach the suite (default 3). */
  unreachableWarnAfter?: number;
  /**
   * Live progress: a running task's progress and display go to the broker at most this often
   * (default 1 s), so `corral job wait` shows them before the task ends.
   */
  progressIntervalMs?: number;
}

interface Session {
  outbox: AsyncQueue<WorkRequest>;
  abort: AbortController;
  /** The broker's Welcome said it reads WorkRequest.batch. */
  batches: boolean;
  /** The broker's Welcome said it takes task logs. */
  taskLogs: boolean;
  /** The broker's Welcome said it reads WorkRequest.progress. */
  progress: boolean;
}

/** Messages per WorkRequest batch. */
const maxBatch = 256;

/**
 * Bytes of outputs and subtask inputs per batch: results may carry outputs of a megabyte each, and
 * a frame must stay under the broker's message limit (8 MiB by default).
 */
const maxBatchBytes = 4 * 1024 * 1024;

/** Roughly what a message weighs on the wire. */
function messageBytes(m: WorkRequest): number {
  if (m.message.case === "taskLogs") {
    let n = 64;
    for (const a of m.message.value.attempts) for (const l of a.lines) n += 32 + l.message.length * 2 + l.fieldsJson.length * 2;
    return n;
  }
  if (m.message.case !== "completed") return 64;
  let n = 64 + (m.message.value.output?.data.length ?? 0);
  for (const s of m.message.value.subtasks) n += 64 + s.input.length;
  return n;
}

/** Splits messages into runs under maxBatchBytes (one message per run at least). */
function byBytes(messages: WorkRequest[]): WorkRequest[][] {
  const runs: WorkRequest[][] = [];
  let run: WorkRequest[] = [];
  let bytes = 0;
  for (const m of messages) {
    const n = messageBytes(m);
    if (run.length > 0 && bytes + n > maxBatchBytes) {
      runs.push(run);
      run = [];
      bytes = 0;
    }
    run.push(m);
    bytes += n;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

/** The request stream: what queued up while the last frame was written goes out as one batch. */
async function* frames(session: Session): AsyncGenerator<WorkRequest> {
  for await (const chunk of session.outbox.chunks(maxBatch)) {
    for (const messages of byBytes(chunk)) {
      if (messages.length === 1 || !session.batches) yield* messages;
      else yield create(WorkRequestSchema, { message: { case: "batch", value: { messages } } });
    }
  }
}

/** What a task's signal is aborted with: an Error named AbortError, as fetch and timers expect. */
function abortError(reason: string): Error {
  const err = new Error(reason);
  err.name = "AbortError";
  return err;
}

/** Errors after which reconnecting cannot help: bad key, unknown cluster, invalid Hello. */
const fatalCodes = new Set([Code.Unauthenticated, Code.PermissionDenied, Code.NotFound, Code.InvalidArgument]);

/**
 * Executes tasks of one cluster. Create it with `client.runner(...)`.
 *
 * @example
 * const runner = client.runner({ cluster: "testing-CvufcSxcC9SKfe", tasks: [Resize], concurrency: 4 });
 * await runner.runForever(); // until SIGTERM or stop()
 */
export class Runner {
  readonly id: string;
  readonly cluster: string;
  readonly concurrency: number;
  readonly #options: RunnerOptions;
  #executor: TaskExecutor;
  readonly #scripts: ScriptPolicy;
  readonly #state: RunnerState;
  readonly #transport: Transport;
  /** The URL and key (by id) the runner connects with: what the can't-reach warning names. */
  readonly #connection: Connection;
  readonly #cache: CacheBackend;
  readonly #logger: Logger;
  readonly #events = new EventEmitter();
  readonly #aborts = new Map<string, AttemptAbort>();
  #lifecycle: RunnerLifecycle = "starting";
  #session: Session | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #loopDone: Promise<void> | undefined;
  #run: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  /** Aborted when the runner stops for good: ends the reconnect loop and its sleeps. */
  readonly #closed = new AbortController();
  #fatal: unknown;
  /** When the broker last welcomed, assigned or acknowledged: runAll's idle clock. */
  #lastActivityAt = 0;
  /** handBack() was called: the drain stops waiting for running tasks and reports them at once. */
  #handingBack = false;
  /** Credit waiting for the end of this event-loop turn (see #credit). */
  #pendingCredit: { session: Session; n: number } | undefined;
  /** ctx.logger lines of the tasks, on their way to the broker. */
  readonly #taskLogs = new TaskLogSender({
    open: () => this.#taskLogSession() !== undefined,
    // A backed-up stream (slow broker) leaves a running task's lines in the bounded buffer
    // instead of the outbox.
    ready: () => (this.#taskLogSession()?.outbox.size ?? Infinity) < 8,
    send: (m) => this.#session?.outbox.push(m) ?? false,
  });
  /** Running tasks' progress, sent at most once per interval. */
  readonly #progress: ProgressThrottle;

  /** The session, when it is connected and its broker takes task logs. */
  #taskLogSession(): Session | undefined {
    const s = this.#session;
    return s !== undefined && s.taskLogs && this.#state.connected ? s : undefined;
  }

  constructor(options: RunnerOptions) {
    this.#options = options;
    this.cluster = options.cluster ?? "";
    this.concurrency = options.concurrency ?? 1;
    this.id = options.runnerId ?? `${os.hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`;
    // Throws here, before connecting, when scripts would run as root without allowScriptsAsRoot.
    this.#scripts = resolveScriptPolicy(options);
    this.#logger = (options.logger ?? createSdkLogger("corral-runner")).child({ runnerId: this.id });
    // The same resolution as the Client: options, environment, then the credentials files.
    const connection = (this.#connection = resolveConnection({ url: options.url, apiKey: options.apiKey }, process.env, process.cwd(), {
      url: "the url option",
      apiKey: "the apiKey option",
    }));
    this.#transport =
      options.transport ??
      createGrpcTransport({
        baseUrl: connection.url,
        interceptors: connection.apiKey ? [createAuthInterceptor(connection.apiKey)] : [],
        ...streamKeepalive,
        // Work messages are small and frequent: compressing them costs more CPU than it saves.
        acceptCompression: [],
      });
    // The suite's shared job cache unless the options name another backend.
    this.#cache = options.cache ?? new SuiteCache(this.#transport, { logger: this.#logger });
    if (options.executor && options.tasks) throw new Error("a runner takes tasks or an executor, not both");
    this.#executor =
      options.executor ??
      new DirectExecutor({ registry: new TaskRegistry(options.tasks ?? []), cache: this.#cache, logger: this.#logger, scripts: this.#scripts });
    this.#state = new RunnerState({
      capacity: this.concurrency,
      canRun: (id) => this.#executor.canRun(id),
    });
    this.#events.setMaxListeners(0);
    this.#progress = new ProgressThrottle(options.progressIntervalMs ?? 1000, (key, snapshot) => {
      // A broker that does not read progress would end the stream over an unknown message.
      if (this.#session?.progress) this.#apply(this.#state.progressUpdate(key, snapshot));
    });
  }

  get lifecycle(): RunnerLifecycle {
    return this.#lifecycle;
  }

  /** The identifiers this runner registers. */
  /** The backend of ctx.cache this runner's tasks use. */
  get cache(): CacheBackend {
    return this.#cache;
  }

  get identifiers() {
    return this.#executor.identifiers();
  }

  /**
   * Changes the task classes this runner serves, live: the broker assigns by the new set from the
   * moment it answers, without a reconnect; tasks already assigned still run and report. Resolves
   * once the broker applied the change (or a new stream's Hello carried it).
   *
   * @example
   * ```ts
   * await runner.setTasks([Resize, Thumbnail]); // Thumbnail tasks are assigned from now on
   * ```
   */
  setTasks(tasks: TaskClass[], options: { signal?: AbortSignal } = {}): Promise<void> {
    if (!(this.#executor instanceof DirectExecutor)) throw new Error("setTasks is for a runner of task classes; its executor decides what it serves");
    // An Assign already on its way for a class no longer served is reported as the runner's fault
    // (no retry counted) and goes to another runner.
    this.#executor = new DirectExecutor({ registry: new TaskRegistry(tasks), cache: this.#cache, logger: this.#logger, scripts: this.#scripts });
    return this.reregister(options);
  }

  /**
   * Registers the executor's identifiers again on the live stream (Reregister) and resolves when
   * the broker answers Reregistered: new assignments follow them, leases already held stay valid.
   * Without a stream, the next Hello carries them. A release runner calls it when its releases change.
   *
   * @example
   * ```ts
   * await runner.reregister();
   * ```
   */
  reregister(options: { signal?: AbortSignal } = {}): Promise<void> {
    const { revision, effects } = this.#state.reregister(this.#executor.identifiers());
    this.#apply(effects);
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (this.#state.appliedRevision >= revision) done(resolve);
        else if (options.signal?.aborted) done(() => reject(options.signal!.reason));
        else if (this.#lifecycle === "stopped" || this.#lifecycle === "failed") done(() => reject(new Error("the runner stopped")));
      };
      const events = ["change", "welcome", "lifecycle"];
      const done = (settle: () => void) => {
        for (const e of events) this.#events.off(e, check);
        options.signal?.removeEventListener("abort", check);
        settle();
      };
      for (const e of events) this.#events.on(e, check);
      options.signal?.addEventListener("abort", check);
      check();
    });
  }

  /** Protocol state, for inspection (tests, status output). */
  get state(): RunnerState {
    return this.#state;
  }

  /** Subscribe to lifecycle changes and protocol events ("lifecycle", "change", "welcome", "disconnected"). */
  on(event: "lifecycle", listener: (state: RunnerLifecycle) => void): this;
  on(event: "change" | "welcome" | "disconnected", listener: () => void): this;
  on(event: "reregistered", listener: (revision: number) => void): this;
  on(event: string, listener: (...args: never[]) => void): this {
    this.#events.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /**
   * Runs until stop(), SIGTERM/SIGINT or the signal aborts; then drains and resolves. Rejects
   * when the broker refuses the runner for good (bad key, unknown cluster).
   */
  async runForever(options: { signal?: AbortSignal; handleSignals?: boolean } = {}): Promise<void> {
    const onSignal = () => void this.stop();
    const handleSignals = options.handleSignals ?? true;
    if (handleSignals) {
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);
    }
    const onAbort = () => void this.stop();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted) void this.stop();
    try {
      await this.#start();
    } finally {
      if (handleSignals) {
        process.off("SIGTERM", onSignal);
        process.off("SIGINT", onSignal);
      }
      options.signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Runs until there is nothing to do: no assignment for `idleMs` and nothing running or
   * waiting for an Ack. Then stops. Rejects with UnavailableError when no broker has taken the
   * runner for `unreachableMs` (default 60 s; counted from the start and from each disconnect).
   */
  async runAll(options: { signal?: AbortSignal; handleSignals?: boolean; unreachableMs?: number } = {}): Promise<void> {
    const idleMs = this.#options.idleMs ?? 1000;
    const unreachableMs = options.unreachableMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    /** Runs from the start and from each disconnect; a connection clears it. */
    let offlineTimer: NodeJS.Timeout | undefined;
    const active = () => this.#lifecycle === "starting" || this.#lifecycle === "running";
    const watchOffline = () => {
      if (this.#state.connected) {
        clearTimeout(offlineTimer);
        offlineTimer = undefined;
        return;
      }
      if (offlineTimer || !active()) return;
      offlineTimer = setTimeout(() => {
        offlineTimer = undefined;
        if (this.#state.connected || !active()) return;
        this.#fail(new UnavailableError(`no broker took this runner for ${Math.round(unreachableMs / 1000)} s (runAll gives up)`), "no broker answered");
      }, unreachableMs);
    };
    const check = () => {
      watchOffline();
      clearTimeout(timer);
      if (this.#lifecycle !== "running" || !this.#state.connected || !this.#state.isIdle()) return;
      const wait = Math.max(0, this.#lastActivityAt + idleMs - Date.now());
      timer = setTimeout(() => {
        if (this.#lifecycle === "running" && this.#state.isIdle() && Date.now() - this.#lastActivityAt >= idleMs) void this.stop();
        else check();
      }, Math.max(wait, idleMs / 4));
    };
    // The Welcome's state change comes while the runner is still "starting": the move to
    // "running" must arm the idle clock too, or a runner no task ever reaches would never return.
    this.#events.on("change", check);
    this.#events.on("lifecycle", check);
    watchOffline();
    try {
      await this.runForever(options);
    } finally {
      clearTimeout(timer);
      clearTimeout(offlineTimer);
      this.#events.off("change", check);
      this.#events.off("lifecycle", check);
    }
  }

  /**
   * Stops taking work, lets running tasks finish for the grace period, reports the rest as the
   * runner's fault (they re-queue without counting a retry), waits for the last Acks, closes.
   * Safe to call more than once.
   */
  stop(): Promise<void> {
    if (this.#stopping) return this.#stopping;
    this.#stopping = this.#drain();
    return this.#stopping;
  }

  /**
   * Stops at once instead of waiting out the drain grace: the tasks still running are reported
   * as the runner's fault, so they go back to the queue (no retry counted) for another runner;
   * then it waits for the broker's Acks and closes. What a second Ctrl-C does. Safe to call
   * more than once, and before or after stop().
   *
   * @example
   * process.once("SIGINT", () => void runner.stop());
   * // ...and on the second one:
   * await runner.handBack();
   */
  handBack(): Promise<void> {
    this.#handingBack = true;
    const stopping = this.stop();
    this.#events.emit("change");
    return stopping;
  }

  /** Tasks running now: what a drain waits for. */
  get runningTasks(): number {
    return this.#aborts.size;
  }

  #setLifecycle(next: RunnerLifecycle): void {
    if (this.#lifecycle === next) return;
    this.#lifecycle = next;
    this.#logger.info({ lifecycle: next }, "runner %s", next);
    this.#events.emit("lifecycle", next);
  }

  #start(): Promise<void> {
    if (!this.#run) {
      const loopDone = (this.#loopDone = this.#loop());
      this.#run = (async () => {
        await loopDone;
        if (this.#stopping) await this.#stopping;
        if (this.#fatal !== undefined) throw this.#fatal;
      })();
    }
    return this.#run;
  }

  async #drain(): Promise<void> {
    if (this.#lifecycle === "stopped" || this.#lifecycle === "failed") return;
    if (!this.#loopDone) {
      this.#setLifecycle("stopped");
      this.#closed.abort();
      return;
    }
    this.#setLifecycle("draining");
    this.#apply(this.#state.startDrain());
    const grace = this.#options.drainGraceMs ?? 30_000;
    if (!(await this.#waitFor(() => !this.#state.hasRunningTasks(), grace, () => this.#handingBack))) {
      this.#logger.warn(this.#handingBack ? "handing the tasks still running back to the queue" : "drain grace period over: reporting the tasks still running");
      this.#apply(this.#state.onGraceExpired());
    }
    await this.#waitFor(() => this.#state.heldCount === 0, this.#options.ackTimeoutMs ?? 10_000);
    if (this.#state.heldCount > 0) {
      this.#logger.warn({ unacknowledged: this.#state.count("reported") }, "stopping without the broker's Ack for some results");
    }
    // Lines still held go out ahead of the stream's end.
    this.#taskLogs.flush();
    this.#taskLogs.close();
    this.#progress.close();
    this.#closed.abort();
    this.#closeSession();
    await this.#loopDone;
    if ((this.#lifecycle as RunnerLifecycle) !== "failed") this.#setLifecycle("stopped");
  }

  /** Resolves true once the predicate holds, false after the timeout or once `giveUp` holds. */
  #waitFor(predicate: () => boolean, timeoutMs: number, giveUp: () => boolean = () => false): Promise<boolean> {
    if (predicate()) return Promise.resolve(true);
    if (giveUp()) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.#events.off("change", onChange);
        resolve(ok);
      };
      const onChange = () => {
        if (predicate()) done(true);
        else if (giveUp()) done(false);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.#events.on("change", onChange);
    });
  }

  async #loop(): Promise<void> {
    const broker = createClient(TaskBrokerService, this.#transport);
    const base = this.#options.reconnect?.baseDelayMs ?? 250;
    const max = this.#options.reconnect?.maxDelayMs ?? 15_000;
    let attempt = 0;
    /** Sessions in a row that ended without a Welcome; at `warnAfter` the runner says it cannot reach the suite. */
    let failures = 0;
    const warnAfter = this.#options.unreachableWarnAfter ?? 3;
    while (!this.#closed.signal.aborted) {
      const session: Session = { outbox: new AsyncQueue(), abort: new AbortController(), batches: false, taskLogs: false, progress: false };
      this.#session = session;
      session.outbox.push(this.#hello());
      let welcomed = false;
      try {
        for await (const res of broker.work(frames(session), { signal: session.abort.signal })) {
          if (res.message.case === "welcome") {
            welcomed = true;
            attempt = 0;
          }
          if (this.#handle(res, session) === "end") break;
        }
      } catch (err) {
        const ce = ConnectError.from(err);
        if (fatalCodes.has(ce.code) && !this.#closed.signal.aborted) {
          this.#fail(toApiError(err));
          return;
        }
        if (!this.#closed.signal.aborted) this.#logger.warn({ code: Code[ce.code], err: ce.rawMessage }, "work stream failed");
      } finally {
        this.#disconnect(session);
      }
      if (this.#closed.signal.aborted) return;
      failures = welcomed ? 0 : failures + 1;
      if (failures === warnAfter) {
        // Said once per outage: a runner started where no credentials apply would otherwise
        // retry ECONNREFUSED quietly for ever.
        this.#logger.warn(
          { url: this.#connection.url, keyId: this.#connection.keyId, attempts: failures },
          "cannot reach the Corral suite at %s after %d attempts (%s): is it running? Set CORRAL_URL and CORRAL_API_KEY, or run where .corral/credentials.json applies. Still retrying with backoff.",
          this.#connection.url,
          failures,
          describeConnection(this.#connection),
        );
      }
      // Reconnect: to another broker replica when this one drains or died. A session that never
      // got a Welcome counts toward the backoff.
      const delay = backoffDelay(welcomed ? 0 : attempt, base, max);
      if (!welcomed) attempt = Math.min(attempt + 1, 20);
      this.#logger.info({ delayMs: Math.round(delay) }, "reconnecting to the broker");
      await sleep(delay, this.#closed.signal).catch(() => undefined);
    }
  }

  #hello(): WorkRequest {
    this.#state.onHelloSent();
    return create(WorkRequestSchema, {
      message: {
        case: "hello",
        value: {
          runnerId: this.id,
          clusterSlug: this.cluster,
          identifiers: this.#executor.identifiers(),
          slots: this.concurrency,
          hardware: detectHardware(this.#options.hardware),
          labels: this.#options.labels ?? {},
          resumeLeases: this.#state.resumeLeases(),
          sdkVersion,
          batches: true,
          kind: this.#options.kind ?? RunnerKind.DIRECT,
        },
      },
    });
  }

  /** Handles one broker message; "end" closes this session (Drain). */
  #handle(res: WorkResponse, session: Session): "end" | undefined {
    const m = res.message;
    switch (m.case) {
      case "welcome": {
        session.batches = m.value.batches;
        session.taskLogs = m.value.taskLogs;
        session.taskLogs = m.value.taskLogs;
        session.progress = m.value.progress;
        const interval = m.value.heartbeatInterval;
        const ms = interval ? Number(interval.seconds) * 1000 + Math.floor(interval.nanos / 1e6) : 0;
        this.#startHeartbeat(ms > 0 ? ms : (this.#options.heartbeatIntervalMs ?? 10_000), session);
        this.#logger.info(
          { sessionId: m.value.sessionId, cluster: m.value.clusterSlug, resumed: m.value.resumed.length },
          "connected to the broker",
        );
        this.#lastActivityAt = Date.now();
        this.#apply(this.#state.onWelcome(m.value));
        if (this.#lifecycle === "starting") this.#setLifecycle("running");
        this.#taskLogs.connected();
        this.#events.emit("welcome");
        break;
      }
      case "assign":
        this.#lastActivityAt = Date.now();
        this.#apply(this.#state.onAssign(m.value));
        break;
      case "ack":
        this.#lastActivityAt = Date.now();
        if (m.value.lease) {
          if (!m.value.accepted) this.#logger.warn({ taskId: m.value.lease.taskId, reason: m.value.reason }, "result rejected as stale");
          this.#apply(this.#state.onAck(m.value.lease));
        }
        break;
      case "cancel":
        if (m.value.lease) this.#apply(this.#state.onCancel(m.value.lease, m.value.reason));
        break;
      case "reregistered":
        this.#apply(this.#state.onReregistered(m.value.revision));
        this.#events.emit("reregistered", m.value.revision);
        this.#events.emit("change");
        break;
      case "drain":
        this.#logger.info({ reason: m.value.reason }, "the broker is draining: reconnecting elsewhere");
        return "end";
      case "batch":
        for (const inner of m.value.messages) {
          if (inner.message.case === "batch") continue; // never sent: a batch holds no batch
          if (this.#handle(inner, session) === "end") return "end";
        }
        break;
      case "error":
        this.#logger.warn({ code: m.value.code, message: m.value.message }, "broker error");
        if (fatalCodes.has(m.value.code as Code)) {
          this.#fail(toApiError(new ConnectError(m.value.message, m.value.code as Code)));
          return "end";
        }
        break;
      default:
        break;
    }
    return undefined;
  }

  /**
   * Heartbeats extend the leases the runner holds; a runner that holds none sends nothing (an idle
   * fleet of thousands would otherwise keep the broker decoding them). Whether the connection is
   * alive is what the transport's HTTP/2 PINGs tell (`streamKeepalive`), for idle runners too.
   */
  #startHeartbeat(ms: number, session: Session): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = setInterval(() => {
      if (this.#state.heldCount === 0) return;
      session.outbox.push(create(WorkRequestSchema, { message: { case: "heartbeat", value: create(HeartbeatSchema) } }));
    }, ms);
  }

  #disconnect(session: Session): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    session.outbox.end();
    session.abort.abort();
    if (this.#session === session) this.#session = undefined;
    this.#state.onDisconnected();
    this.#events.emit("disconnected");
    this.#events.emit("change");
  }

  #closeSession(): void {
    const s = this.#session;
    if (!s) return;
    // Half-close first so the broker sees a clean end; abort if it does not answer promptly.
    s.outbox.end();
    setTimeout(() => s.abort.abort(), 2000).unref();
  }

  #fail(err: unknown, why = "the broker refused this runner"): void {
    this.#fatal = err;
    this.#logger.error({ err }, why);
    for (const c of this.#aborts.values()) c.abort(err);
    this.#setLifecycle("failed");
    this.#closed.abort();
  }

  #apply(effects: RunnerEffect[]): void {
    for (const e of effects) {
      switch (e.kind) {
        case "send":
          if (e.message.case === "credit") this.#credit(e.message.value.n);
          else this.#session?.outbox.push(create(WorkRequestSchema, { message: e.message }));
          break;
        case "execute":
          this.#execute(e.key, e.assign);
          break;
        case "abort": {
          const c = this.#aborts.get(e.key);
          c?.abort(abortError(e.reason));
          break;
        }
      }
    }
    this.#events.emit("change");
  }

  /**
   * Credit freed within one turn of the event loop goes out as one Credit message: under load
   * many tasks finish together, and one message per slot would double the stream's traffic.
   */
  #credit(n: number): void {
    const session = this.#session;
    if (!session) return;
    if (this.#pendingCredit && this.#pendingCredit.session === session) {
      this.#pendingCredit.n += n;
      return;
    }
    const pending = (this.#pendingCredit = { session, n });
    setImmediate(() => {
      if (this.#pendingCredit === pending) this.#pendingCredit = undefined;
      // A new session starts from its own Hello: credit meant for the old stream is void.
      if (this.#session === pending.session) {
        pending.session.outbox.push(create(WorkRequestSchema, { message: { case: "credit", value: { n: pending.n } } }));
      }
    });
  }

  #execute(key: string, assign: Assign): void {
    const abort = new AttemptAbort();
    this.#aborts.set(key, abort);
    const timeout = executionDeadline(assign, abort);
    const lease = assign.lease!;
    // Assigned, not declared, so no function name is defined on them per task.
    const listeners: AttemptListeners = {};
    listeners.onLog = (line) => this.#taskLogs.line(lease, line);
    listeners.onProgress = (read) => this.#progress.note(key, read);
    void this.#executor
      .execute(key, assign, abort, listeners)
      .catch((err: unknown): TaskOutcome => ({
        kind: "failed",
        error: describeError(err),
        unrecoverable: false,
        countsAsRetry: true,
        display: "",
        progress: [],
      }))
      .then((outcome) => {
        this.#aborts.delete(key);
        this.#progress.forget(key);
        timeout?.clear();
        // The attempt's last lines go just ahead of its result.
        this.#taskLogs.beforeResult(lease.taskId, lease.attempt);
        this.#apply(this.#state.onTaskFinished(key, timeout?.fired ? timedOutOutcome(outcome, timeout.ms) : outcome));
      });
  }
}

/**
 * Aborts the task's signal at its execution timeout (a DOMException named TimeoutError, as
 * AbortSignal.timeout gives). The broker stops extending the lease then too.
 */
function executionDeadline(assign: Assign, abort: AttemptAbort): { ms: number; fired: boolean; clear(): void } | undefined {
  const d = assign.task?.executionTimeout;
  const ms = d ? Number(d.seconds) * 1000 + Math.floor(d.nanos / 1e6) : 0;
  if (ms <= 0) return undefined;
  const state = {
    ms,
    fired: false,
    clear: () => clearTimeout(timer),
  };
  const timer = setTimeout(() => {
    state.fired = true;
    abort.abort(new DOMException(`the task ran past its execution timeout of ${ms / 1000} s`, "TimeoutError"));
  }, ms);
  timer.unref?.();
  return state;
}

/** Past its deadline an attempt failed as TIMED_OUT, whatever it returned after. */
function timedOutOutcome(outcome: TaskOutcome, ms: number): TaskOutcome {
  return {
    kind: "failed",
    error: outcome.kind === "failed" ? outcome.error : `the task ran past its execution timeout of ${ms / 1000} s`,
    unrecoverable: false,
    countsAsRetry: true,
    display: outcome.display,
    progress: outcome.progress,
    timedOut: true,
    output: outcome.kind === "failed" ? outcome.output : undefined,
  };
}
