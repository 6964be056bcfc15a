// The `jobs` schema as kysely sees it, and every row type derived from it: a renamed column fails
// to compile wherever a row is read or written. Task and job states are stored as the proto enum
// numbers (see domain/states.ts).
import type { ColumnType, Generated, Kysely, Selectable, Transaction } from "kysely";

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
  /** The automation that submitted the job. */
  automation_id: ColumnType<string | null, string | null | undefined, never>;
  /** Timeouts and backoff for the job's tasks that set none (SubmitJobRequest.task_defaults). */
  task_defaults: ColumnType<TaskDefaultsJson | null, string | null, string | null>;
  /** Derived from the counters and the cancel flag (a stored generated column). */
  state: ColumnType<number, never, never>;
  /** The job's trace (32 hex digits); null for jobs older than traces (see domain/traces/trace-context.ts). */
  trace_id: ColumnType<string | null, string | null | undefined, never>;
  /** The caller's span the job's root tasks are children of (16 hex digits), when it sent a traceparent. */
  trace_parent_span_id: ColumnType<string | null, string | null | undefined, never>;
  /** W3C trace flags (bit 0: sampled). */
  trace_flags: ColumnType<number, number | undefined, never>;
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
  /** 0: no execution timeout. */
  exec_timeout_ms: Generated<number>;
  /** 0: no schedule-to-start timeout. */
  start_timeout_ms: Generated<number>;
  retry_backoff: ColumnType<RetryBackoffJson | null, string | null, string | null>;
  /** The current attempt starts no earlier (a delayed start or a retry's backoff). */
  not_before: Date | null;
  /** The current attempt, queued and ready, fails when it has not started by then. */
  start_deadline: Date | null;
  /** TaskErrorKind of the last attempt that ended without a result (0: none). */
  error_kind: Generated<number>;
  /** 0 to 9, higher first (the broker queues each level above 0 in its own stream). */
  priority: Generated<number>;
  /** When the current attempt was queued (its span's start). */
  queue_time: Generated<Date>;
}

/** An attempt a retry or a re-queue superseded, kept as its span (outcome: a SpanOutcome number). */
export interface TaskSpansTable {
  task_id: string;
  attempt: number;
  job_id: string;
  runner_id: string;
  queue_time: Date;
  start_time: Date | null;
  stop_time: Date | null;
  outcome: number;
  error: string;
}

export interface RetryBackoffJson {
  initialMs: number;
  multiplier: number;
  maxMs: number;
  jitter: number;
}

export interface TaskDefaultsJson {
  execTimeoutMs: number;
  startTimeoutMs: number;
  retryBackoff: RetryBackoffJson | null;
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
  /** Not sent before then (a delayed start or a retry's backoff); null: send now. */
  not_before: Generated<Date | null>;
}

/** What one task attempt returned (encoding: the OutputEncoding number). */
export interface TaskOutputsTable {
  task_id: string;
  attempt: number;
  encoding: number;
  data: Buffer;
  create_time: Generated<Date>;
}

/** A team's queued + running tasks over all its jobs (the queued-task quota's count). */
export interface TeamUsageTable {
  team_id: string;
  open_tasks: Generated<number>;
}

export interface AutomationsTable {
  id: string;
  team_id: string;
  name: string;
  identifier_name: string;
  identifier_version: string;
  /** The prototype input, a JSON object as UTF-8. */
  input: Buffer;
  display: string;
  max_retries: number;
  cluster_slug: string;
  /** OverlapPolicy and CatchUpPolicy numbers (never UNSPECIFIED). */
  overlap: number;
  catch_up: number;
  paused: Generated<boolean>;
  create_time: Generated<Date>;
  update_time: Generated<Date>;
  cron_cursor: Generated<Date>;
  next_fire: Date | null;
}

/** A trigger's settings as stored (spec column). */
export type TriggerSpec =
  | { kind: "cron"; schedule: string; timeZone: string }
  | { kind: "directory"; path: string }
  | { kind: "s3"; bucket: string; prefix: string; endpoint: string; region: string; accessKeyId: string; secretAccessKeyRef: string };

export interface AutomationTriggersTable {
  id: string;
  automation_id: string;
  position: number;
  kind: TriggerSpec["kind"];
  spec: ColumnType<TriggerSpec, string, string>;
  since: Generated<Date>;
  cursor: Generated<string>;
  next_poll: Date | null;
}

export interface AutomationFiresTable {
  automation_id: string;
  fire_key: string;
  trigger_id: string;
  fire_time: Date;
  object: Generated<string>;
  job_id: string | null;
  skipped_reason: Generated<string>;
  create_time: Generated<Date>;
}

/** The request digest of each idempotency key's first submission. */
export interface SubmissionDigestsTable {
  team_id: string;
  idempotency_key: string;
  digest: string;
}

export interface JobsDatabase {
  submission_digests: SubmissionDigestsTable;
  automations: AutomationsTable;
  automation_triggers: AutomationTriggersTable;
  automation_fires: AutomationFiresTable;
  team_usage: TeamUsageTable;
  jobs: JobsTable;
  tasks: TasksTable;
  task_deps: TaskDepsTable;
  outbox: OutboxTable;
  task_outputs: TaskOutputsTable;
  task_spans: TaskSpansTable;
}

/** A job as read (every column). */
export type JobRow = Selectable<JobsTable>;

/** The columns a job is inserted with. */
export type NewJob = Pick<JobRow, "id" | "team_id" | "name" | "cluster_id" | "cluster_slug" | "idempotency_key" | "queued" | "total"> & {
  trace_id?: string | null;
  trace_parent_span_id?: string | null;
  trace_flags?: number;
  automation_id?: string | null;
  /** TaskDefaultsJson as JSON text. */
  task_defaults: string | null;
};

export type AutomationRow = Selectable<AutomationsTable>;
export type TriggerRow = Selectable<AutomationTriggersTable>;
/** A fire with its job's state (null when skipped or the job is gone). */
export type FireRow = Selectable<AutomationFiresTable> & { job_state: number | null };

type Task = Selectable<TasksTable>;

/** The columns the result state machine reads and writes. */
export type TaskStateRow = Pick<
  Task,
  | "id"
  | "job_id"
  | "parent_id"
  | "state"
  | "attempt"
  | "retry_count"
  | "lease_expiry_count"
  | "max_retries"
  | "optional"
  | "waiting_deps"
  | "has_dependants"
  | "open_children"
  | "subtask_count"
  | "runner_id"
  | "start_time"
  | "stop_time"
  | "error"
  | "display"
  | "progress"
  | "compute_ms"
  | "cluster_id"
  | "cluster_slug"
  | "exec_timeout_ms"
  | "start_timeout_ms"
  | "retry_backoff"
  | "not_before"
  | "error_kind"
  | "queue_time"
  | "identifier_name"
  | "identifier_version"
>;

/** The columns a new task is inserted with. */
export type NewTaskRow = Pick<
  Task,
  | "id"
  | "job_id"
  | "parent_id"
  | "position"
  | "cluster_id"
  | "cluster_slug"
  | "identifier_name"
  | "identifier_version"
  | "input"
  | "display"
  | "state"
  | "max_retries"
  | "optional"
  | "waiting_deps"
  | "has_dependants"
  | "exec_timeout_ms"
  | "start_timeout_ms"
  | "retry_backoff"
  | "not_before"
  | "start_deadline"
  | "priority"
>;

/** One dependency edge: `task_id` waits for `depends_on_id`. */
export type TaskEdgeRow = Selectable<TaskDepsTable>;

/** A task as the public API shows it: its columns, its dependencies, and its input when asked for. */
export type TaskDetailRow = Pick<
  Task,
  | "id"
  | "job_id"
  | "parent_id"
  | "position"
  | "identifier_name"
  | "identifier_version"
  | "display"
  | "state"
  | "cluster_slug"
  | "attempt"
  | "retry_count"
  | "lease_expiry_count"
  | "max_retries"
  | "optional"
  | "runner_id"
  | "start_time"
  | "stop_time"
  | "error"
  | "progress"
  | "subtask_count"
  | "exec_timeout_ms"
  | "start_timeout_ms"
  | "retry_backoff"
  | "not_before"
  | "start_deadline"
  | "error_kind"
  | "waiting_deps"
  | "priority"
> & {
  depends_on: string[] | null;
  input: Task["input"] | null;
  /** The current attempt's output, when asked for and there is one. */
  output_encoding?: number | null;
  output_data?: Buffer | null;
};

/** An output as written with its result. */
export type NewTaskOutputRow = Omit<Selectable<TaskOutputsTable>, "create_time">;

/** A dependency's output as an envelope carries it (data in base64, from a JSON aggregate). */
export interface DependencyOutputJson {
  task_id: string;
  name: string;
  version: string;
  encoding: number;
  data: string;
}

/** A task as a graph node. */
export type GraphTaskRow = Pick<Task, "id" | "parent_id" | "identifier_name" | "identifier_version" | "display" | "state">;

/** Everything a TaskEnvelope carries: the task's columns and its job's team and name. */
export type EnvelopeRow = Pick<
  Task,
  | "id"
  | "job_id"
  | "cluster_id"
  | "cluster_slug"
  | "identifier_name"
  | "identifier_version"
  | "attempt"
  | "input"
  | "display"
  | "parent_id"
  | "retry_count"
  | "max_retries"
  | "exec_timeout_ms"
  | "not_before"
  | "priority"
> & {
  team_id: JobRow["team_id"];
  job_name: JobRow["name"];
  /** The job's trace, for the attempt's traceparent (null: older than traces). */
  trace_id: JobRow["trace_id"];
  trace_flags: JobRow["trace_flags"];
  /** Outputs of the task's dependencies by position; null when none or over the bound (see `dependency_outputs_omitted`). */
  dependency_outputs?: DependencyOutputJson[] | null;
  dependency_outputs_omitted?: boolean;
};

/** A superseded attempt's span as stored. */
export type TaskSpanRow = Selectable<TaskSpansTable>;

/** A task's columns its spans are read with. */
export type SpanTaskRow = Pick<
  Task,
  | "id"
  | "parent_id"
  | "identifier_name"
  | "identifier_version"
  | "display"
  | "cluster_slug"
  | "state"
  | "attempt"
  | "runner_id"
  | "queue_time"
  | "start_time"
  | "stop_time"
  | "error"
  | "error_kind"
>;

/** A queued task a cancel or a failed job canceled. */
export type CanceledTaskRow = Pick<Task, "id" | "job_id" | "attempt" | "cluster_id" | "waiting_deps">;

/** Repositories take either the pool or an open transaction. */
export type JobsDb = Kysely<JobsDatabase> | Transaction<JobsDatabase>;

export const JOBS_SCHEMA = "jobs";
/** One NOTIFY channel for every job; the payload is the job id. */
export const JOB_CHANGES_CHANNEL = "corral_job_changes";
