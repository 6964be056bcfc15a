// corral/Echo: returns its message as the task's display (and in the job cache), after an
// optional delay that honours cancellation. Handy for trying a cluster and in tests.
import type { ExecutionContext } from "../execution-context.js";
import { UnrecoverableTaskError } from "../errors.js";
import { Task } from "../task.js";
import { sleep } from "../transport.js";

export interface EchoInput {
  message: string;
  /** Wait this long first; aborted by a cancel. */
  delayMs?: number;
  /** Fail instead (with this error), to try retries and failure handling. */
  fail?: string;
}

/**
 * @example
 * await client.jobs().submit("hello", new Echo({ message: "hi", delayMs: 1000 }));
 */
export class Echo extends Task<EchoInput> {
  static override identifier = { name: "corral/Echo", version: "v1.0" };

  /** The cache key the message is stored under for a task. */
  static cacheKey(taskId: string): string {
    return `corral/Echo/${taskId}`;
  }

  override async execute(ctx: ExecutionContext): Promise<void> {
    const input = this.input;
    if (typeof input?.message !== "string") throw new UnrecoverableTaskError("input.message must be a string");
    if (input.delayMs !== undefined && input.delayMs > 0) await sleep(input.delayMs, ctx.signal);
    if (input.fail !== undefined) throw new Error(input.fail);
    ctx.setDisplay(truncateBytes(input.message, 1024));
    await ctx.cache.put(Echo.cacheKey(ctx.task.id), input.message);
    ctx.logger.info({ message: input.message }, "echo");
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
