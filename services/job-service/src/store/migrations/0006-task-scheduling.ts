// Scheduling controls: per-task execution and schedule-to-start timeouts, retry backoff, priority, the time
// an attempt may start (a delayed start or a retry's backoff) and the deadline a queued attempt
// fails at; the job's defaults for them; and the outbox rows that wait for their start time.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  // Constant defaults and nullable columns: Postgres adds them without rewriting the tables.
  await sql`alter table tasks
    add column exec_timeout_ms integer not null default 0,
    add column start_timeout_ms integer not null default 0,
    add column retry_backoff jsonb,
    add column not_before timestamptz,
    add column start_deadline timestamptz,
    add column error_kind smallint not null default 0,
    add column priority smallint not null default 0`.execute(db);
  // The start-timeout sweeper reads queued attempts by deadline; other rows stay out of the index.
  await sql`create index tasks_start_deadline on tasks (start_deadline) where start_deadline is not null and state = 1`.execute(db);
  await sql`alter table jobs add column task_defaults jsonb`.execute(db);
  await sql`alter table outbox add column not_before timestamptz`.execute(db);
  await sql`create index outbox_not_before on outbox (not_before) where not_before is not null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table outbox drop column not_before`.execute(db);
  await sql`alter table jobs drop column task_defaults`.execute(db);
  await sql`alter table tasks drop column exec_timeout_ms, drop column start_timeout_ms, drop column retry_backoff,
    drop column not_before, drop column start_deadline, drop column error_kind, drop column priority`.execute(db);
}
