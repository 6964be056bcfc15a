// Traces: each job is a trace (its id chosen at submission or continued from the caller's
// traceparent) and each task attempt a span. The current attempt's span is read from its task row
// (queue_time, start_time, stop_time, runner, state); attempts a retry or a re-queue superseded
// keep theirs in task_spans, written in the transaction that ended them and deleted with the task.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  // Jobs submitted before this migration have no trace id: theirs reads as the job id's hex.
  await sql`alter table jobs add column trace_id text`.execute(db);
  await sql`alter table jobs add column trace_parent_span_id text`.execute(db);
  await sql`alter table jobs add column trace_flags smallint not null default 1`.execute(db);
  // When the current attempt was queued (inserted, re-queued by a retry or by RetryJob).
  await sql`alter table tasks add column queue_time timestamptz not null default now()`.execute(db);
  await sql`
    create table task_spans (
      task_id text not null references tasks (id) on delete cascade,
      attempt integer not null,
      job_id text not null,
      runner_id text not null default '',
      queue_time timestamptz not null,
      start_time timestamptz,
      stop_time timestamptz,
      outcome smallint not null,
      error text not null default '',
      primary key (task_id, attempt)
    )`.execute(db);
  await sql`create index task_spans_job_id on task_spans (job_id, task_id, attempt)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table if exists task_spans`.execute(db);
  await sql`alter table tasks drop column if exists queue_time`.execute(db);
  await sql`alter table jobs drop column if exists trace_flags`.execute(db);
  await sql`alter table jobs drop column if exists trace_parent_span_id`.execute(db);
  await sql`alter table jobs drop column if exists trace_id`.execute(db);
}
