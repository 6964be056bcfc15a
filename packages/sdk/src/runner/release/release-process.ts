// The runner's handle on one release version's child process: starts it (child_process.fork with
// an IPC channel), forwards tasks and cancellations, answers its job-cache calls, forwards its log
// lines, and turns its death into runner-fault outcomes for the tasks it held.
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Assign } from "@corral/proto";
import type { CacheBackend } from "../../cache.js";
import type { TaskIdentifierInit } from "../../identifier.js";
import type { Logger } from "../../logger.js";
import type { ScriptOptions } from "../../tasks/script-policy.js";
import { describeError } from "../execute-task.js";
import type { TaskOutcome } from "../runner-state.js";
import type { ProgressListener } from "../execute-task.js";
import type { AttemptListeners } from "../task-executor.js";
import { decodeOutcome, decodeProgress, encodeEnvelope, isChildMessage, releaseFault, type ChildMessage, type ParentMessage } from "./release-ipc.js";

const entry = fileURLToPath(new URL("./child-entry.mjs", import.meta.url));

export class ReleaseLoadError extends Error {
  override name = "ReleaseLoadError";
}

export interface ReleaseProcessOptions {
  /** name@version. */
  release: string;
  bundlePath: string;
  cache: CacheBackend;
  logger: Logger;
  scripts: ScriptOptions;
  logLevel?: string;
  /** How long a stopped child may take to exit before SIGKILL (default 5 s). */
  killAfterMs?: number;
  /**
   * Called when the process ended, before its tasks' outcomes are settled: the runner withdraws
   * the release's identifiers first, so the re-queued tasks are not assigned straight back to it.
   */
  onExit?: (reason: string) => void;
}

const levelNames: Record<number, "trace" | "debug" | "info" | "warn" | "error" | "fatal"> = {
  10: "trace",
  20: "debug",
  30: "info",
  40: "warn",
  50: "error",
  60: "fatal",
};

export class ReleaseProcess {
  readonly release: string;
  readonly #options: ReleaseProcessOptions;
  readonly #child: ChildProcess;
  readonly #pending = new Map<string, (outcome: TaskOutcome) => void>();
  /** Where each running task's ctx.logger records go (the runner's task log). */
  readonly #taskLogs = new Map<string, (line: string) => void>();
  /** Live progress listeners of the tasks in flight. */
  readonly #progress = new Map<string, ProgressListener>();
  readonly #exited: Promise<string>;
  #loaded: Promise<TaskIdentifierInit[]>;
  #exitReason: string | undefined;
  #stopping = false;

  constructor(options: ReleaseProcessOptions) {
    this.release = options.release;
    this.#options = options;
    this.#child = fork(entry, [], {
      serialization: "advanced",
      // The child's own flags (tsx) are set by its entry; the parent's (a test runner's) are not its business.
      execArgv: ["--enable-source-maps"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env: { ...process.env, CORRAL_RELEASE: options.release },
    });
    this.#exited = new Promise((resolve) => {
      const done = (reason: string) => {
        if (this.#exitReason !== undefined) return;
        this.#exitReason = reason;
        options.onExit?.(reason);
        for (const [key, settle] of this.#pending) {
          this.#pending.delete(key);
          settle(releaseFault(`the process of release ${this.release} ended (${reason}) while the task ran`));
        }
        resolve(reason);
      };
      this.#child.once("exit", (code, signal) => done(signal ? `killed by ${signal}` : `exit code ${code}`));
      this.#child.once("error", (err) => done(describeError(err)));
    });
    this.#loaded = new Promise((resolve, reject) => {
      const onMessage = (m: unknown) => {
        if (!isChildMessage(m)) return;
        if (m.type === "loaded") resolve(m.identifiers);
        else if (m.type === "load-failed") reject(new ReleaseLoadError(m.error));
      };
      this.#child.on("message", onMessage);
      void this.#exited.then((reason) => reject(new ReleaseLoadError(`its process ended before it loaded (${reason})`)));
    });
    this.#loaded.catch(() => undefined);
    this.#child.on("message", (m: unknown) => {
      if (isChildMessage(m)) this.#onMessage(m);
    });
    this.#send({
      type: "load",
      bundlePath: options.bundlePath,
      release: options.release,
      scripts: options.scripts,
      logLevel: options.logLevel ?? options.logger.level,
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** The identifiers the bundle exports; rejects with ReleaseLoadError. */
  loaded(): Promise<TaskIdentifierInit[]> {
    return this.#loaded;
  }

  /** Resolves with why the process ended. */
  exited(): Promise<string> {
    return this.#exited;
  }

  get alive(): boolean {
    return this.#exitReason === undefined;
  }

  /** Tasks forwarded and not answered yet. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Runs a task in the child; an outcome always comes back (a runner fault if the child dies). */
  execute(key: string, assign: Assign, signal: AbortSignal, listeners: AttemptListeners = {}): Promise<TaskOutcome> {
    if (!this.alive) return Promise.resolve(releaseFault(`the process of release ${this.release} is not running`));
    return new Promise((resolve) => {
      const onAbort = () => this.#send({ type: "cancel", key, reason: describeReason(signal.reason) });
      signal.addEventListener("abort", onAbort, { once: true });
      if (listeners.onLog) this.#taskLogs.set(key, listeners.onLog);
      if (listeners.onProgress) this.#progress.set(key, listeners.onProgress);
      this.#pending.set(key, (outcome) => {
        signal.removeEventListener("abort", onAbort);
        this.#taskLogs.delete(key);
        this.#progress.delete(key);
        resolve(outcome);
      });
      this.#send({ type: "execute", key, attempt: assign.lease!.attempt, envelope: encodeEnvelope(assign.task!) });
      if (signal.aborted) onAbort();
    });
  }

  /** Asks the child to exit, killing it if it does not. Resolves once it ended. */
  stop(): Promise<string> {
    if (!this.#stopping && this.alive) {
      this.#stopping = true;
      this.#send({ type: "stop" });
      const timer = setTimeout(() => this.#child.kill("SIGKILL"), this.#options.killAfterMs ?? 5_000);
      timer.unref();
      void this.#exited.then(() => clearTimeout(timer));
    }
    return this.#exited;
  }

  /** SIGKILL now (runner shutting down past its grace). */
  kill(): void {
    if (this.alive) this.#child.kill("SIGKILL");
  }

  #send(message: ParentMessage): void {
    if (!this.alive || !this.#child.connected) return;
    this.#child.send(message, (err) => {
      if (err) this.#options.logger.debug({ err, release: this.release }, "could not write to a release process");
    });
  }

  #onMessage(m: ChildMessage): void {
    switch (m.type) {
      case "result": {
        const settle = this.#pending.get(m.key);
        if (!settle) return;
        this.#pending.delete(m.key);
        let outcome: TaskOutcome;
        try {
          outcome = decodeOutcome(m.outcome);
        } catch (err) {
          outcome = releaseFault(`the process of release ${this.release} sent an unreadable result: ${describeError(err)}`);
        }
        settle(outcome);
        break;
      }
      case "cache":
        void this.#cache(m);
        break;
      case "log":
        this.#log(m.line);
        break;
      case "task-log":
        this.#taskLogs.get(m.key)?.(m.line);
        break;
      case "progress": {
        const listener = this.#progress.get(m.key);
        if (!listener) break;
        try {
          const snapshot = decodeProgress(m.bytes);
          listener(() => snapshot);
        } catch (err) {
          this.#options.logger.debug({ err, release: this.release }, "unreadable progress from a release process");
        }
        break;
      }
      default:
        break;
    }
  }

  async #cache(m: Extract<ChildMessage, { type: "cache" }>): Promise<void> {
    const backend = this.#options.cache;
    try {
      let value: Uint8Array | undefined;
      if (m.op === "get") value = await backend.get(m.jobId, m.key);
      else if (m.op === "put") await backend.put(m.jobId, m.key, m.value ?? new Uint8Array(0));
      else await backend.delete(m.jobId, m.key);
      this.#send({ type: "cache-reply", id: m.id, value });
    } catch (err) {
      this.#send({ type: "cache-reply", id: m.id, error: describeError(err) });
    }
  }

  /** A pino line from the child, re-logged through the runner's logger (level kept). */
  #log(line: string): void {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.#options.logger.info({ release: this.release }, line.trimEnd());
      return;
    }
    const { level, msg, time: _time, pid: _pid, hostname: _hostname, name: _name, ...rest } = entry;
    const method = levelNames[level as number] ?? "info";
    this.#options.logger[method]({ ...rest, release: this.release, childPid: this.pid }, typeof msg === "string" ? msg : "");
  }
}

function describeReason(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason ?? "canceled");
}
