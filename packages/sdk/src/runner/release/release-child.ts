// The child process of one release version: imports its bundle, reports the task classes it
// exports, runs the tasks its runner forwards (each with a full ExecutionContext) and answers with
// their outcomes. It never talks to the broker: leases stay with the runner.
import { pathToFileURL } from "node:url";
import { pino } from "pino";
import type { CacheBackend } from "../../cache.js";
import { collectTaskClasses } from "../../task-module.js";
import { resolveScriptPolicy, type ScriptPolicy } from "../../tasks/script-policy.js";
import { AttemptAbort } from "../attempt-abort.js";
import { describeError, executeTask, TaskRegistry } from "../execute-task.js";
import { ProgressThrottle } from "../progress-throttle.js";
import { decodeEnvelope, encodeOutcome, encodeProgress, isParentMessage, type CacheOp, type ChildMessage, type LoadRequest } from "./release-ipc.js";

function send(message: ChildMessage): void {
  process.send?.(message);
}

/** ctx.cache of a task in this process: the runner's cache backend, asked over the channel. */
class ParentCache implements CacheBackend {
  #next = 0;
  readonly #waiting = new Map<number, { resolve: (v: Uint8Array | undefined) => void; reject: (e: Error) => void }>();

  #ask(op: CacheOp, jobId: string, key: string, value?: Uint8Array): Promise<Uint8Array | undefined> {
    const id = ++this.#next;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      send({ type: "cache", id, op, jobId, key, value });
    });
  }

  reply(id: number, value: Uint8Array | undefined, error: string | undefined): void {
    const w = this.#waiting.get(id);
    if (!w) return;
    this.#waiting.delete(id);
    if (error !== undefined) w.reject(new Error(error));
    else w.resolve(value);
  }

  get(jobId: string, key: string) {
    return this.#ask("get", jobId, key);
  }

  async put(jobId: string, key: string, value: Uint8Array) {
    await this.#ask("put", jobId, key, value);
  }

  async delete(jobId: string, key: string) {
    await this.#ask("delete", jobId, key);
  }
}

const cache = new ParentCache();
const running = new Map<string, AttemptAbort>();
let registry: TaskRegistry | undefined;
let scripts: ScriptPolicy | undefined;
let logger = pino({ level: "info" }, { write: (line: string) => send({ type: "log", line }) });

async function load(request: LoadRequest): Promise<void> {
  logger = pino({ name: "corral-release", level: request.logLevel, base: { release: request.release } }, { write: (line: string) => send({ type: "log", line }) });
  try {
    scripts = resolveScriptPolicy(request.scripts);
    const mod = (await import(pathToFileURL(request.bundlePath).href)) as Record<string, unknown>;
    const classes = collectTaskClasses(mod);
    if (classes.length === 0) throw new Error("the bundle exports no task classes");
    registry = new TaskRegistry(classes);
    send({ type: "loaded", identifiers: registry.identifiers });
  } catch (err) {
    send({ type: "load-failed", error: describeError(err) });
  }
}

/** Live progress goes to the runner at most this often per task; the runner throttles again for the broker. */
const progress = new ProgressThrottle(250, (key, snapshot) => send({ type: "progress", key, bytes: encodeProgress(snapshot) }));

async function execute(key: string, attempt: number, envelopeBytes: Uint8Array): Promise<void> {
  const abort = new AttemptAbort();
  running.set(key, abort);
  try {
    const outcome = await executeTask({
      envelope: decodeEnvelope(envelopeBytes),
      attempt,
      registry: registry!,
      cache,
      logger,
      abort,
      scripts,
      onLog: (line) => send({ type: "task-log", key, line }),
      onProgress: (read) => progress.note(key, read),
    }).catch((err: unknown) => ({
      kind: "failed" as const,
      error: describeError(err),
      unrecoverable: false,
      countsAsRetry: true,
      display: "",
      progress: [],
    }));
    progress.forget(key);
    send({ type: "result", key, outcome: encodeOutcome(outcome) });
  } finally {
    running.delete(key);
  }
}

process.on("message", (message: unknown) => {
  if (!isParentMessage(message)) return;
  switch (message.type) {
    case "load":
      void load(message);
      break;
    case "execute":
      void execute(message.key, message.attempt, message.envelope);
      break;
    case "cancel": {
      const err = new Error(message.reason);
      err.name = "AbortError";
      running.get(message.key)?.abort(err);
      break;
    }
    case "cache-reply":
      cache.reply(message.id, message.value, message.error);
      break;
    case "stop":
      process.exit(0);
  }
});
// The runner went away (or closed the channel): nothing can take this process's results.
process.on("disconnect", () => process.exit(0));
