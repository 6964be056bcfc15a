// Job and task states by name, for filters, output and the terminal-state check.
import { JobState, TaskState } from "@corral/proto";

export type JobStateName = "submitted" | "running" | "started" | "completed" | "failed" | "canceled";
export type TaskStateName = "queued" | "running" | "computed" | "failed" | "skipped" | "failed_optional" | "canceled";

export const jobStates: Record<JobStateName, JobState> = {
  submitted: JobState.SUBMITTED,
  running: JobState.RUNNING,
  started: JobState.STARTED,
  completed: JobState.COMPLETED,
  failed: JobState.FAILED,
  canceled: JobState.CANCELED,
};

export const taskStates: Record<TaskStateName, TaskState> = {
  queued: TaskState.QUEUED,
  running: TaskState.RUNNING,
  computed: TaskState.COMPUTED,
  failed: TaskState.FAILED,
  skipped: TaskState.SKIPPED,
  failed_optional: TaskState.FAILED_OPTIONAL,
  canceled: TaskState.CANCELED,
};

export function jobStateName(state: JobState): JobStateName | "unspecified" {
  return (Object.keys(jobStates) as JobStateName[]).find((k) => jobStates[k] === state) ?? "unspecified";
}

export function taskStateName(state: TaskState): TaskStateName | "unspecified" {
  return (Object.keys(taskStates) as TaskStateName[]).find((k) => taskStates[k] === state) ?? "unspecified";
}

export function isTerminalJobState(state: JobState): boolean {
  return state === JobState.COMPLETED || state === JobState.FAILED || state === JobState.CANCELED;
}
