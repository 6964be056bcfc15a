// Row types of the `jobs` schema. Task and job states are stored as the proto enum numbers.
import type { ColumnType, Generated, Kysely, Transaction } from "kysely";

export interface JobsTable {
  id: string;
  team_id: string;
  name: string;
  cluster_id: string;
  cluster_slug: string;
  idempotency_key: string | null;
  canceled: Generated<boolean>;
  submit_time: Generated<Date>;
  end_time: Date | null;
  first_start_time: Date | null;
  last_stop_time: Date | null;
  compute_ms: Generated<number>;
  queued: Generated<number>;
  running: Generated<number>;
  computed: Generated<number>;
  failed: Generated<number>;
  skipped: Generated<number>;
  failed_optional: Generated<number>;
  canceled_tasks: Generated<number>;
  total: Generated<number>;
  /** Derived from the counters and the cancel flag (a stored generated column). */
  state: ColumnType<number, never, never>;
}

export interface TasksTable {
  id: string;
  job_id: string;
  parent_id: string | null;
  position: number;
  cluster_id: string;
  cluster_slug: string;
  identifier_name: string;
  identifier_version: string;
  input: Buffer;
  display: string;
  state: number;
  attempt: Generated<number>;
  retry_count: Generated<number>;
  lease_expiry_count: Generated<number>;
  max_retries: number;
  optional: boolean;
  waiting_deps: Generated<number>;
  has_dependants: Generated<boolean>;
  open_children: Generated<number>;
  subtask_count: Generated<number>;
  runner_id: Generated<string>;
  start_time: Date | null;
  stop_time: Date | null;
  error: Generated<string>;
  progress: ColumnType<ProgressJson[] | null, string | null, string | null>;
  compute_ms: Generated<number>;
  change_seq: Generated<number>;
}

export interface ProgressJson {
  label: string;
  total: number;
  done: number;
}

export interface TaskDepsTable {
  task_id: string;
  depends_on_id: string;
}

export interface OutboxTable {
  task_id: string;
  attempt: number;
  job_id: string;
  created_at: Generated<Date>;
}

/** A team's queued + running tasks over all its jobs (the queued-task quota's count). */
export interface TeamUsageTable {
  team_id: string;
  open_tasks: Generated<number>;
}

export interface JobsDatabase {
  team_usage: TeamUsageTable;
  jobs: JobsTable;
  tasks: TasksTable;
  task_deps: TaskDepsTable;
  outbox: OutboxTable;
}

/** Repositories take either the pool or an open transaction. */
export type JobsDb = Kysely<JobsDatabase> | Transaction<JobsDatabase>;

export const JOBS_SCHEMA = "jobs";
/** One NOTIFY channel for every job; the payload is the job id. */
export const JOB_CHANGES_CHANNEL = "corral_job_changes";
