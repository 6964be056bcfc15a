// Jobs and tasks that print well: the SDK hands out the protobuf messages (their fields stay as
// they are), each with a non-enumerable toJSON and util.inspect view in plain values, so
// console.log(job) and JSON.stringify(job) show state names and numbers, not enum numbers,
// `$typeName` and bigints (which JSON.stringify cannot even write).
import { timestampDate, type Duration, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { Job, ProgressIndicator, Task as TaskRecord, WatchJobResponse } from "@corral/proto";
import { jobStateName, taskStateName } from "./job-states.js";

const inspectCustom = Symbol.for("nodejs.util.inspect.custom");

function iso(ts: Timestamp | undefined): string | undefined {
  return ts ? timestampDate(ts).toISOString() : undefined;
}

function ms(d: Duration | undefined): number | undefined {
  return d ? Number(d.seconds) * 1000 + Math.round(d.nanos / 1e6) : undefined;
}

function progressView(p: readonly ProgressIndicator[]) {
  return p.map((i) => ({ label: i.label, total: Number(i.total), done: Number(i.done) }));
}

/** A job in plain values: what JSON.stringify(job) and console.log(job) show. */
export function jobView(job: Job) {
  const s = job.stats;
  return {
    id: job.id,
    name: job.name,
    clusterSlug: job.clusterSlug,
    state: jobStateName(job.state),
    submitTime: iso(job.submitTime),
    endTime: iso(job.endTime),
    canceled: job.canceled,
    idempotencyKey: job.idempotencyKey,
    teamId: job.teamId,
    automationId: job.automationId,
    progress: progressView(job.progress),
    stats: s && {
      firstTaskStartTime: iso(s.firstTaskStartTime),
      lastTaskStopTime: iso(s.lastTaskStopTime),
      computeTimeMs: ms(s.computeTime),
      elapsedTimeMs: ms(s.elapsedTime),
      parallelism: s.parallelism,
      tasksByState: s.tasksByState && {
        queued: s.tasksByState.queued,
        running: s.tasksByState.running,
        computed: s.tasksByState.computed,
        failed: s.tasksByState.failed,
        skipped: s.tasksByState.skipped,
        failedOptional: s.tasksByState.failedOptional,
        canceled: s.tasksByState.canceled,
        total: s.tasksByState.total,
      },
    },
    waitReasons: job.waitReasons.map((r) => ({
      clusterSlug: r.clusterSlug,
      identifier: r.identifier ? `${r.identifier.name}@${r.identifier.version}` : undefined,
      tasks: r.tasks,
      message: r.message,
    })),
  };
}

/** A task in plain values (its input bytes left out). */
export function taskView(t: TaskRecord) {
  return {
    id: t.id,
    jobId: t.jobId,
    parentId: t.parentId,
    identifier: t.identifier ? `${t.identifier.name}@${t.identifier.version}` : undefined,
    display: t.display,
    state: taskStateName(t.state),
    clusterSlug: t.clusterSlug,
    attempt: t.attempt,
    retryCount: t.retryCount,
    leaseExpiryCount: t.leaseExpiryCount,
    maxRetries: t.maxRetries,
    optional: t.optional,
    dependsOn: t.dependsOn,
    runnerId: t.runnerId,
    startTime: iso(t.startTime),
    stopTime: iso(t.stopTime),
    error: t.error,
    progress: progressView(t.progress),
    subtaskCount: t.subtaskCount,
  };
}

function withView<T extends object>(message: T, view: (m: T) => unknown): T {
  if (Object.prototype.hasOwnProperty.call(message, "toJSON")) return message;
  // Non-enumerable: protobuf-es (toBinary, toJson, equals, clone) and toEqual never see them.
  Object.defineProperty(message, "toJSON", { value: () => view(message), enumerable: false, configurable: true });
  Object.defineProperty(message, inspectCustom, {
    value: (_depth: number, options: object, inspect: (v: unknown, o: object) => string) => inspect(view(message), options),
    enumerable: false,
    configurable: true,
  });
  return message;
}

export function printableJob(job: Job): Job {
  return withView(job, jobView);
}

export function printableTask(task: TaskRecord): TaskRecord {
  return withView(task, taskView);
}

export function printableUpdate(update: WatchJobResponse): WatchJobResponse {
  if (update.job) printableJob(update.job);
  update.changedTasks.forEach(printableTask);
  return update;
}
