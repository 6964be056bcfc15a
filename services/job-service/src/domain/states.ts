// Task and job states as stored (the proto enum numbers) and the sets the transitions reason about.
import { JobState, TaskState } from "@corral/proto";

export const QUEUED = TaskState.QUEUED;
export const RUNNING = TaskState.RUNNING;
export const COMPUTED = TaskState.COMPUTED;
export const FAILED = TaskState.FAILED;
export const SKIPPED = TaskState.SKIPPED;
export const FAILED_OPTIONAL = TaskState.FAILED_OPTIONAL;
export const CANCELED = TaskState.CANCELED;

/** Lease expiries a task survives before it fails; separate from max_retries. */
export const MAX_LEASE_EXPIRIES = 10;

/** Job states after which nothing runs until a retry. */
export function isJobEnded(state: JobState): boolean {
  return state === JobState.COMPLETED || state === JobState.FAILED || state === JobState.CANCELED;
}

/** Counter column of the jobs table for each task state. */
export const stateCounterColumn = {
  [TaskState.QUEUED]: "queued",
  [TaskState.RUNNING]: "running",
  [TaskState.COMPUTED]: "computed",
  [TaskState.FAILED]: "failed",
  [TaskState.SKIPPED]: "skipped",
  [TaskState.FAILED_OPTIONAL]: "failed_optional",
  [TaskState.CANCELED]: "canceled_tasks",
} as const;

export type CounterColumn = (typeof stateCounterColumn)[keyof typeof stateCounterColumn];
export const counterColumns: CounterColumn[] = Object.values(stateCounterColumn);

/** Per-job changes of the state counters and run statistics within one transaction. */
export class JobDeltas {
  private readonly byJob = new Map<string, JobDelta>();

  get(jobId: string): JobDelta {
    let d = this.byJob.get(jobId);
    if (!d) {
      d = { jobId, counts: {}, total: 0, computeMs: 0, firstStart: null, lastStop: null };
      this.byJob.set(jobId, d);
    }
    return d;
  }

  move(jobId: string, from: number | null, to: number | null, n = 1): void {
    if (from === to) return;
    const d = this.get(jobId);
    if (from !== null) add(d, from, -n);
    if (to !== null) add(d, to, n);
    if (from === null) d.total += n;
    if (to === null) d.total -= n;
  }

  ran(jobId: string, start: Date | null, stop: Date | null): void {
    const d = this.get(jobId);
    if (start && (!d.firstStart || start < d.firstStart)) d.firstStart = start;
    if (stop && (!d.lastStop || stop > d.lastStop)) d.lastStop = stop;
    if (start && stop) d.computeMs += Math.max(0, stop.getTime() - start.getTime());
  }

  all(): JobDelta[] {
    return [...this.byJob.values()];
  }
}

export interface JobDelta {
  jobId: string;
  counts: Partial<Record<CounterColumn, number>>;
  total: number;
  computeMs: number;
  firstStart: Date | null;
  lastStop: Date | null;
}

function add(d: JobDelta, state: number, n: number): void {
  const col = stateCounterColumn[state as keyof typeof stateCounterColumn];
  if (!col) throw new Error(`unknown task state ${state}`);
  d.counts[col] = (d.counts[col] ?? 0) + n;
}
