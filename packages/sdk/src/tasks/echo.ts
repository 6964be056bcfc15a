// corral/Echo: returns `{ echoed: message }` as its output (and shows the message as its display
// and in the job cache), after an optional delay that honours cancellation. Accepts Mindtrace's
// EchoWorker input (`delay` in seconds) as well as `delayMs`.
import type { ExecutionContext } from "../execution-context.js";
import { UnrecoverableTaskError } from "../errors.js";
import { Task } from "../task.js";
import { sleep } from "../transport.js";

/** What Echo returns: Mindtrace's EchoWorker output. */
export interface EchoOutput {
  echoed: string;
}

export interface EchoInput {
  message: string;
  /** Wait this long first; aborted by a cancel. */
  delayMs?: number;
  /** Mindtrace's EchoWorker shape: wait this many seconds first (delayMs wins when both are set). */
  delay?: number;
  /** Fail instead (with this error), to try retries and failure handling. */
  fail?: string;
}

/**
 * @example
 * const { echoed } = await client.jobs().run("hello", new Echo({ message: "hi", delay: 1 }));
 */
export class Echo extends Task<EchoInput, EchoOutput> {
  static override identifier = { name: "corral/Echo", version: "v1.0" };

  /** The cache key the message is stored under for a task. */
  static cacheKey(taskId: string): string {
    return `corral/Echo/${taskId}`;
  }

  override async execute(ctx: ExecutionContext): Promise<EchoOutput> {
    const input = this.input;
    if (typeof input?.message !== "string") throw new UnrecoverableTaskError("input.message must be a string");
    if (input.delay !== undefined && (typeof input.delay !== "number" || !(input.delay >= 0))) {
      throw new UnrecoverableTaskError("input.delay must be a number of seconds, not negative");
    }
    const delayMs = input.delayMs ?? (input.delay !== undefined ? input.delay * 1000 : 0);
    if (delayMs > 0) await sleep(delayMs, ctx.signal);
    if (input.fail !== undefined) throw new Error(input.fail);
    ctx.setDisplay(truncateBytes(input.message, 1024));
    await ctx.cache.put(Echo.cacheKey(ctx.task.id), input.message);
    ctx.logger.info({ message: input.message }, "echo");
    return { echoed: input.message };
  }
}

/** The longest prefix of `text` that fits in `max` UTF-8 bytes. */
export function truncateBytes(text: string, max: number): string {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= max) return text;
  return new TextDecoder().decode(bytes.slice(0, max)).replace(/\uFFFD$/, "");
}

/** The longest suffix of `text` that fits in `max` UTF-8 bytes. */
export function tailBytes(text: string, max: number): string {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= max) return text;
  return new TextDecoder().decode(bytes.slice(bytes.length - max)).replace(/^\uFFFD/, "");
}
