// corral job submit|list|get|result|cancel|retry|wait|visualize (and logs, in job-logs.ts)
import { writeFile } from "node:fs/promises";
import { toJson } from "@bufbuild/protobuf";
import type { Command } from "commander";
import { JobSchema, TaskErrorKind, TaskSchema, TaskState, type Job, type Task as TaskView, type TaskSubmission } from "@corral/proto";
import {
  decodeOutput,
  describeFailedTask,
  JobCanceledError,
  JobFailedError,
  jobStateName,
  TaskFailedError,
  jobStates,
  type Client,
  parseIdentifier,
  rawTask,
  taskStateName,
  type JobStateName,
  type Task,
} from "@corral/sdk";
import { collect, durationArg, intArg, rateLimitArg, timeArg, type CliContext } from "../context.js";
import { UsageError } from "../exit-codes.js";
import { details, duration, jsonText, messageJson, orDash, table, time } from "../output.js";
import { createProgressView } from "../progress-bars.js";
import { getJobTemplate, listJobTemplates } from "../templates.js";
import { firstErrorLine, scriptFailureLines } from "../script-failure-view.js";
import { registerJobLogsCommand } from "./job-logs.js";
import { registerJobSpansCommand } from "./job-spans.js";

const errorKindText: Partial<Record<TaskErrorKind, string>> = {
  [TaskErrorKind.TIMED_OUT]: "timed out",
  [TaskErrorKind.SCHEDULE_TO_START_TIMED_OUT]: "not started in time",
  [TaskErrorKind.LEASE_EXPIRED]: "lease expired",
};

/** Why a task waits (queued) or how its last attempt ended, on one line. */
function whyText(t: TaskView): string {
  if (t.state === TaskState.QUEUED) {
    const last = t.error === "" ? "" : ` (last attempt: ${errorKindText[t.errorKind] ?? t.error.split("\n")[0]})`;
    return t.waitReason + last;
  }
  const kind = errorKindText[t.errorKind];
  const first = t.error.split("\n")[0] ?? "";
  return kind ? `${kind}: ${first}` : first;
}

function progressText(job: Job): string {
  if (job.progress.length === 0) return "-";
  return job.progress.map((p) => `${p.label || "tasks"} ${String(p.done)}/${String(p.total)}`).join(", ");
}

function showJob(ctx: CliContext, cmd: Command, job: Job): void {
  if (ctx.json(cmd)) return ctx.io.out(messageJson(JobSchema, job));
  const counts = job.stats?.tasksByState;
  ctx.io.out(
    details([
      ["id", job.id],
      ["name", job.name],
      ["cluster", orDash(job.clusterSlug)],
      ["state", jobStateName(job.state)],
      ["submitted", time(job.submitTime)],
      ["ended", time(job.endTime)],
      ["progress", progressText(job)],
      [
        "tasks",
        counts
          ? `${counts.total} total, ${counts.queued} queued, ${counts.running} running, ${counts.computed} computed, ${counts.failed} failed`
          : "-",
      ],
      ["compute time", duration(job.stats?.computeTime)],
      ["elapsed", duration(job.stats?.elapsedTime)],
      ["trace", `${orDash(job.traceId)} (corral job spans ${job.id})`],
    ]),
  );
}

/** Pairs each --task with the --input at the same position. */
export function submissionsFromFlags(tasks: string[], inputs: string[]): TaskSubmission[] {
  if (inputs.length > tasks.length) throw new UsageError("more --input than --task flags");
  return tasks.map((t, i) => {
    const text = inputs[i];
    let input: unknown;
    if (text !== undefined) {
      try {
        input = JSON.parse(text);
      } catch (err) {
        throw new UsageError(`--input ${JSON.stringify(text)} is not JSON: ${(err as Error).message}`);
      }
    }
    return rawTask(parseIdentifier(t), input);
  });
}

/** Failed tasks printed when a job fails: the first few say why; the rest are counted. */
const failedTasksShown = 5;

/**
 * Why a job's queued tasks wait (no runner on the cluster, or none serving the task class), one
 * line each; empty when nothing is stuck or the diagnosis is not available (it is advice, so a
 * failure to work it out never fails the command).
 */
async function waitingLines(client: Client, job: Job): Promise<string[]> {
  if (isTerminal(job) || (job.stats?.tasksByState?.queued ?? 1) === 0) return [];
  try {
    return (await client.jobs().whyWaiting(job.id)).map((r) => `${r.message} (${r.tasks} queued task${r.tasks === 1 ? "" : "s"} wait)`);
  } catch {
    return [];
  }
}

function isTerminal(job: Job): boolean {
  const state = jobStateName(job.state);
  return state === "completed" || state === "failed" || state === "canceled";
}

/** The failed tasks of a failed job, one line each (task, identifier, attempt, error). */
async function failureLines(client: Client, jobId: string): Promise<string[]> {
  try {
    const failed = await client.jobs().failedTasks(jobId);
    // Leaves first: a parent fails because a subtask did, and the subtask's error says why.
    const leaves = [...failed.filter((t) => t.subtaskCount === 0), ...failed.filter((t) => t.subtaskCount > 0)];
    const shown = await Promise.all(leaves.slice(0, failedTasksShown).map((t) => withOutput(client, jobId, t)));
    const lines = shown.flatMap(({ task: t, output }) => {
      // A RunScript failure: its exit code and output tails, not the first lines of its error.
      const script = scriptFailureLines(t.error, output);
      if (script.length === 0) return [describeFailedTask(t)];
      return [describeFailedTask({ ...t, error: firstErrorLine(t.error) }), ...script];
    });
    if (leaves.length > failedTasksShown) lines.push(`... and ${leaves.length - failedTasksShown} more failed tasks (corral job get ${jobId} --tasks)`);
    return lines;
  } catch {
    return [];
  }
}

/** A failed task with its failed attempt's output, decoded (none when it has none or it cannot be read). */
async function withOutput(client: Client, jobId: string, task: TaskView): Promise<{ task: TaskView; output: unknown }> {
  try {
    const full = await client.jobs().task(jobId, task.id);
    return { task, output: full.outputAttempt === task.attempt ? decodeOutput(full.output) : undefined };
  } catch {
    return { task, output: undefined };
  }
}

async function waitForJob(ctx: CliContext, cmd: Command, id: string, timeoutSeconds?: number): Promise<void> {
  const view = ctx.json(cmd) ? undefined : createProgressView(ctx.io);
  const signal = timeoutSeconds ? AbortSignal.timeout(timeoutSeconds * 1000) : undefined;
  const client = ctx.client(cmd);
  // Said once, on the first update: why queued work cannot start (to stderr, beside the bars).
  let diagnosis: Promise<void> | undefined;
  try {
    const job = await client.jobs().wait(id, {
      signal,
      onProgress: ({ job }) => {
        diagnosis ??= waitingLines(client, job).then((lines) => {
          for (const line of lines) ctx.io.err(`waiting: ${line}`);
        });
        view?.update(jobStateName(job.state), job.progress);
      },
    });
    await diagnosis;
    view?.finish();
    if (ctx.json(cmd)) ctx.io.out(messageJson(JobSchema, job));
    else ctx.io.out(`job ${job.id} completed`);
  } catch (err) {
    await diagnosis;
    view?.finish();
    if (signal?.aborted && (err as Error).name === "TimeoutError") {
      throw new UsageError(`job ${id} did not end within ${timeoutSeconds}s`);
    }
    if (err instanceof JobFailedError && !(err instanceof JobCanceledError)) {
      for (const line of await failureLines(client, id)) ctx.io.err(line);
    }
    throw err;
  }
}

export function registerJobCommands(program: Command, ctx: CliContext): void {
  const job = program.command("job").description("submit and follow jobs");

  job
    .command("submit [template]")
    .description("submit a job: a named template, or tasks given as --task name@vX.Y [--input JSON]")
    .option("--task <identifier>", "a root task, name@vMAJOR.MINOR (repeatable)", collect, [])
    .option("--input <json>", "the JSON input of the --task at the same position (repeatable)", collect, [])
    .option("-n, --name <name>", "job name (default: the template or first task's name)")
    .option("-c, --cluster <slug>", "cluster (default: the team's default cluster)")
    .option("--max-retries <n>", "retries per root task", intArg(0, 1000))
    .option("--idempotency-key <key>", "repeat-safe submission key")
    .option("--timeout <duration>", "execution timeout of each attempt of every task (e.g. 30s, 5m)", durationArg)
    .option("--start-timeout <duration>", "fail a task that waits this long for a runner (schedule-to-start)", durationArg)
    .option("--retry-backoff <duration>", "wait before each retry, doubling up to 100 times it (e.g. 1s)", durationArg)
    .option("--delay <duration>", "start the root tasks this long after submission", durationArg)
    .option("--not-before <time>", "start the root tasks no earlier than this (ISO 8601)", timeArg)
    .option("--priority <n>", "priority of the root tasks, 0 (default) to 9: higher runs first", intArg(0, 9))
    .option("--concurrency-key <key>", "run at most --concurrency-limit root tasks with this key at once in the cluster")
    .option("--concurrency-limit <n>", "running tasks per --concurrency-key (default 1)", intArg(1, 100_000))
    .option("--rate-limit <name:N/period>", "start the root tasks at most N per period under this named limit (e.g. emails:10/1s)", rateLimitArg)
    .option("-w, --wait", "wait for the job to end (exit code 1 when it fails)")
    .option("--traceparent <value>", "continue this W3C trace (default: $TRACEPARENT, as a CI job or a traced script sets it)")
    .action(
      async (
        template: string | undefined,
        o: {
          task: string[];
          input: string[];
          name?: string;
          cluster?: string;
          maxRetries?: number;
          idempotencyKey?: string;
          timeout?: number;
          startTimeout?: number;
          retryBackoff?: number;
          delay?: number;
          notBefore?: Date;
          priority?: number;
          concurrencyKey?: string;
          concurrencyLimit?: number;
          rateLimit?: { name: string; limit: number; period: string };
          wait?: boolean;
          traceparent?: string;
        },
        cmd: Command,
      ) => {
        if (o.concurrencyLimit !== undefined && o.concurrencyKey === undefined) {
          throw new UsageError("--concurrency-limit needs --concurrency-key");
        }
        let name = o.name;
        let tasks: Array<Task<unknown> | TaskSubmission>;
        if (template !== undefined) {
          const t = getJobTemplate(template);
          if (!t) {
            const known = listJobTemplates().map(([n]) => n);
            throw new UsageError(`no job template ${JSON.stringify(template)}${known.length ? ` (known: ${known.join(", ")})` : ""}`);
          }
          if (o.task.length > 0) throw new UsageError("give a template or --task flags, not both");
          const built = await t.build({ cluster: o.cluster });
          name ??= built.name;
          tasks = built.tasks;
        } else {
          if (o.task.length === 0) throw new UsageError("nothing to submit: give a template or at least one --task");
          tasks = submissionsFromFlags(o.task, o.input);
          name ??= parseIdentifier(o.task[0]!).name;
        }
        const submitted = await ctx.client(cmd).jobs().submit(name, tasks, {
          cluster: o.cluster,
          maxRetries: o.maxRetries,
          idempotencyKey: o.idempotencyKey,
          timeout: o.timeout,
          scheduleToStartTimeout: o.startTimeout,
          retry: o.retryBackoff === undefined ? undefined : { backoff: { initial: o.retryBackoff } },
          delay: o.delay,
          notBefore: o.notBefore,
          priority: o.priority,
          concurrency: o.concurrencyKey === undefined ? undefined : { key: o.concurrencyKey, limit: o.concurrencyLimit ?? 1 },
          rateLimit: o.rateLimit,
          traceparent: o.traceparent ?? (process.env.TRACEPARENT || undefined),
        });
        if (!o.wait) {
          showJob(ctx, cmd, submitted);
          // Submitting to a cluster no runner serves is accepted (a runner may come), but say so.
          for (const line of await waitingLines(ctx.client(cmd), submitted)) ctx.io.err(`warning: ${line}; the job waits until one connects`);
          return;
        }
        if (!ctx.json(cmd)) ctx.io.out(`submitted job ${submitted.id}`);
        await waitForJob(ctx, cmd, submitted.id);
      },
    );

  job
    .command("list")
    .alias("ls")
    .description("list jobs, newest first (--order asc: oldest first)")
    .option("--state <state>", `only jobs in this state: ${Object.keys(jobStates).join(", ")} (repeatable)`, collect, [])
    .option("-c, --cluster <slug>", "only jobs of this cluster (repeatable)", collect, [])
    .option("--name <text>", "only jobs whose name contains this")
    .option("--automation <id>", "only jobs this automation submitted")
    .option("--from-id <id>", "only jobs whose id is at least this (ids are time-ordered)")
    .option("--to-id <id>", "only jobs whose id is below this")
    .option("--order <direction>", "asc (oldest first) or desc (newest first)", "desc")
    .option("--limit <n>", "at most this many", intArg(1, 100000), 50)
    .action(
      async (
        o: { state: string[]; cluster: string[]; name?: string; automation?: string; fromId?: string; toId?: string; order: string; limit: number },
        cmd: Command,
      ) => {
        for (const s of o.state) {
          if (!(s in jobStates)) throw new UsageError(`unknown state ${JSON.stringify(s)}: use ${Object.keys(jobStates).join(", ")}`);
        }
        if (o.order !== "asc" && o.order !== "desc") throw new UsageError(`unknown order ${JSON.stringify(o.order)}: use asc or desc`);
        const jobs = await ctx.client(cmd).jobs().query({
          states: o.state as JobStateName[],
          clusters: o.cluster,
          name: o.name,
          automation: o.automation,
          idFrom: o.fromId,
          idTo: o.toId,
          order: o.order,
          limit: o.limit,
        });
        if (ctx.json(cmd)) return ctx.io.out(messageJson(JobSchema, jobs));
        ctx.io.out(
          table(
            ["ID", "NAME", "CLUSTER", "STATE", "PROGRESS", "SUBMITTED"],
            jobs.map((j) => [j.id, j.name, orDash(j.clusterSlug), jobStateName(j.state), progressText(j), time(j.submitTime)]),
          ),
        );
      },
    );

  job
    .command("get <id>")
    .description("show a job and its root tasks")
    .option("--tasks", "also list the root tasks")
    .action(async (id: string, o: { tasks?: boolean }, cmd: Command) => {
      const client = ctx.client(cmd);
      const found = await client.jobs().find(id);
      const waiting = ctx.json(cmd) ? [] : await waitingLines(client, found);
      // Why a failed job failed: its failed tasks (a RunScript's exit code and output tails).
      const failures = ctx.json(cmd) || jobStateName(found.state) !== "failed" ? [] : await failureLines(client, id);
      if (!o.tasks) {
        showJob(ctx, cmd, found);
        for (const line of waiting) ctx.io.out(`waiting: ${line}`);
        for (const line of failures) ctx.io.out(line);
        return;
      }
      const tasks = await client.jobs().tasks(id);
      if (ctx.json(cmd)) {
        return ctx.io.out(jsonText({ job: toJson(JobSchema, found), tasks: tasks.map((t) => toJson(TaskSchema, t)) }));
      }
      showJob(ctx, cmd, found);
      for (const line of waiting) ctx.io.out(`waiting: ${line}`);
      ctx.io.out("");
      ctx.io.out(
        table(
          ["TASK", "IDENTIFIER", "STATE", "ATTEMPT", "SUBTASKS", "DISPLAY", "WHY"],
          tasks.map((t) => [
            t.id,
            t.identifier ? `${t.identifier.name}@${t.identifier.version}` : "-",
            taskStateName(t.state),
            String(t.attempt),
            String(t.subtaskCount),
            orDash(t.display.split("\n")[0]),
            orDash(whyText(t)),
          ]),
        ),
      );
      if (failures.length > 0) {
        ctx.io.out("");
        for (const line of failures) ctx.io.out(line);
      }
    });

  job
    .command("result <id>")
    .description("wait for a job and print its result (its root task's output), or one task's output")
    .option("--task <taskId>", "print this task's output instead (without waiting)")
    .action(async (id: string, o: { task?: string }, cmd: Command) => {
      const jobs = ctx.client(cmd).jobs();
      let value: unknown;
      if (o.task) value = decodeOutput((await jobs.task(id, o.task)).output);
      else {
        try {
          value = await jobs.result(id);
        } catch (err) {
          // A RunScript that failed: its exit code and output tails, then the error.
          const script = err instanceof TaskFailedError ? scriptFailureLines(err.error, err.output) : [];
          if (err instanceof TaskFailedError && script.length > 0) {
            ctx.io.err(`task ${err.taskId} attempt ${err.attempt}:`);
            for (const line of script) ctx.io.err(line);
          }
          throw err;
        }
      }
      if (value instanceof Uint8Array) {
        // Bytes: base64, so a terminal never receives raw binary.
        if (ctx.json(cmd)) return ctx.io.out(jsonText({ encoding: "bytes", base64: Buffer.from(value).toString("base64") }));
        return ctx.io.out(Buffer.from(value).toString("base64"));
      }
      if (value === undefined) return ctx.json(cmd) ? ctx.io.out("null") : undefined;
      ctx.io.out(ctx.json(cmd) ? jsonText(value) : typeof value === "string" ? value : JSON.stringify(value, null, 2));
    });

  job
    .command("cancel <id>")
    .description("cancel a job: queued tasks never start, running tasks are told to stop")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      showJob(ctx, cmd, await ctx.client(cmd).jobs().cancel(id));
    });

  job
    .command("clone <id>")
    .description("submit a job's root tasks again as a new job, on the same clusters or on --cluster")
    .option("-c, --cluster <slug>", "run every root task on this cluster instead")
    .option("--name <name>", "the new job's name (default: the job's)")
    .option("--wait", "wait for the new job to end, showing its progress")
    .action(async (id: string, o: { cluster?: string; name?: string; wait?: boolean }, cmd: Command) => {
      const cloned = await ctx.client(cmd).jobs().clone(id, { cluster: o.cluster, name: o.name });
      if (!o.wait) return showJob(ctx, cmd, cloned);
      if (!ctx.json(cmd)) ctx.io.out(`submitted job ${cloned.id}`);
      await waitForJob(ctx, cmd, cloned.id);
    });

  job
    .command("retry <id>")
    .description("re-queue a job's failed and canceled tasks")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const { rescheduled, job: j } = await ctx.client(cmd).jobs().retry(id);
      if (ctx.json(cmd)) return ctx.io.out(jsonText({ rescheduled, job: JSON.parse(messageJson(JobSchema, j)) }));
      ctx.io.out(`rescheduled ${rescheduled} task${rescheduled === 1 ? "" : "s"} of job ${j.id}`);
    });

  job
    .command("wait <id>")
    .description("wait for a job to end, showing its progress (exit code 1 when it fails)")
    .option("--timeout <seconds>", "give up after this long (exit code 2)", intArg(1))
    .action(async (id: string, o: { timeout?: number }, cmd: Command) => {
      await waitForJob(ctx, cmd, id, o.timeout);
    });

  job
    .command("visualize <id>")
    .description("draw a job's task graph")
    .option("-f, --format <format>", "mermaid, svg or dot", "mermaid")
    .option("-o, --output <file>", "write to a file instead of stdout")
    .option("--max-tasks <n>", "summarise graphs larger than this", intArg(0, 5000))
    .option("--direction <direction>", "down or right", "down")
    .option("--theme <theme>", "light or dark", "light")
    .option("--include-job-name", "draw the job's name as the title")
    .action(
      async (
        id: string,
        o: { format: string; output?: string; maxTasks?: number; direction: string; theme: string; includeJobName?: boolean },
        cmd: Command,
      ) => {
        if (!["mermaid", "svg", "dot"].includes(o.format)) throw new UsageError(`unknown format ${JSON.stringify(o.format)}: use mermaid, svg or dot`);
        if (o.direction !== "down" && o.direction !== "right") throw new UsageError(`unknown direction ${JSON.stringify(o.direction)}: use down or right`);
        if (o.theme !== "light" && o.theme !== "dark") throw new UsageError(`unknown theme ${JSON.stringify(o.theme)}: use light or dark`);
        const v = await ctx.client(cmd).jobs().visualize(id, {
          maxTasks: o.maxTasks,
          direction: o.direction,
          theme: o.theme,
          includeJobName: o.includeJobName,
        });
        const text = o.format === "svg" ? v.svg : o.format === "dot" ? v.dot : v.mermaid;
        if (o.output) {
          await writeFile(o.output, text);
          ctx.io.out(`wrote ${o.output}${v.summarized ? " (summarised)" : ""}`);
        } else {
          ctx.io.out(text);
        }
      },
    );
  registerJobLogsCommand(job, ctx);
  registerJobSpansCommand(job, ctx);
}
