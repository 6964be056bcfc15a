// corral job logs <id> [--task T] [--attempt N] [--follow] [--json]: the lines a job's tasks wrote
// with ctx.logger, one per line (time, level, task, message, fields), or as JSON lines.
import type { Command } from "commander";
import type { TaskLogLine } from "@corral/sdk";
import { intArg, type CliContext } from "../context.js";
import { UsageError } from "../exit-codes.js";

function fieldValue(v: unknown): string {
  if (typeof v === "string") return /[\s"=]/.test(v) || v === "" ? JSON.stringify(v) : v;
  if (v !== null && typeof v === "object") {
    const e = v as { message?: unknown };
    // An error: its message says more than its JSON.
    if (typeof e.message === "string") return JSON.stringify(e.message);
    return JSON.stringify(v);
  }
  return String(v);
}

/**
 * One line as a person reads it.
 *
 * @example
 * // 2026-12-04T23:40:01.123Z INFO  tiles/Render 0193a1b2-... #1  rendered tile=7
 */
export function formatTaskLogLine(l: TaskLogLine): string {
  const fields = Object.entries(l.fields).map(([k, v]) => `${k}=${fieldValue(v)}`);
  const head = `${l.time.toISOString()} ${l.level.toUpperCase().padEnd(5)} ${l.taskName} ${l.taskId} #${l.attempt}  ${l.message}`;
  return [head, ...fields].join(" ");
}

export function registerJobLogsCommand(job: Command, ctx: CliContext): void {
  job
    .command("logs <id>")
    .description("print the lines a job's tasks logged (ctx.logger), each attempt's in order")
    .option("--task <taskId>", "only this task's lines")
    .option("--attempt <n>", "only this attempt of --task", intArg(1))
    .option("-f, --follow", "keep printing new lines as they arrive, until the job ends")
    .action(async (id: string, o: { task?: string; attempt?: number; follow?: boolean }, cmd: Command) => {
      if (o.attempt !== undefined && !o.task) throw new UsageError("--attempt needs --task");
      const json = ctx.json(cmd);
      for await (const line of ctx.client(cmd).jobs().logs(id, { task: o.task, attempt: o.attempt, follow: o.follow })) {
        // --json: one object per line (JSON Lines), so a follower can parse each as it comes.
        ctx.io.out(json ? JSON.stringify({ ...line, time: line.time.toISOString() }) : formatTaskLogLine(line));
      }
    });
}
