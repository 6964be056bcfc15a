// Jobs, tasks, dependency edges and the dispatch outbox. Task states are the proto TaskState numbers
// (1 queued, 2 running, 3 computed, 4 failed, 5 skipped, 6 failed optional, 7 canceled); the job
// state is the proto JobState number derived from per-job counters kept in the same transactions.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table jobs (
      id text primary key,
      team_id text not null,
      name text not null,
      cluster_id text not null,
      cluster_slug text not null,
      idempotency_key text,
      canceled boolean not null default false,
      submit_time timestamptz not null default now(),
      end_time timestamptz,
      first_start_time timestamptz,
      last_stop_time timestamptz,
      compute_ms bigint not null default 0,
      queued integer not null default 0,
      running integer not null default 0,
      computed integer not null default 0,
      failed integer not null default 0,
      skipped integer not null default 0,
      failed_optional integer not null default 0,
      canceled_tasks integer not null default 0,
      total integer not null default 0,
      state smallint generated always as (
        case
          when failed > 0 then 5
          when canceled then 6
          when queued + running = 0 then 4
          when running > 0 then 2
          when first_start_time is not null then 3
          else 1
        end
      ) stored
    )`.execute(db);
  await sql`create unique index jobs_team_idempotency_key on jobs (team_id, idempotency_key) where idempotency_key is not null`.execute(db);
  await sql`create index jobs_team_id on jobs (team_id, id)`.execute(db);

  // Every task write takes the next number, so WatchJob can ask for what changed after the last
  // number it saw. Writers of one job hold its row lock, so numbers commit in order per job.
  await sql`create sequence task_change_seq`.execute(db);
  await sql`
    create table tasks (
      id text primary key,
      job_id text not null,
      parent_id text,
      position integer not null,
      cluster_id text not null,
      cluster_slug text not null,
      identifier_name text not null,
      identifier_version text not null,
      input bytea not null,
      display text not null,
      state smallint not null,
      attempt integer not null default 1,
      retry_count integer not null default 0,
      lease_expiry_count integer not null default 0,
      max_retries integer not null default 0,
      optional boolean not null default false,
      waiting_deps integer not null default 0,
      open_children integer not null default 0,
      subtask_count integer not null default 0,
      runner_id text not null default '',
      start_time timestamptz,
      stop_time timestamptz,
      error text not null default '',
      progress jsonb,
      compute_ms bigint not null default 0,
      change_seq bigint not null default nextval('task_change_seq')
    )`.execute(db);
  await sql`create index tasks_job_change_seq on tasks (job_id, change_seq)`.execute(db);
  // One level of the tree in order: ListTasks, and roots (parent_id is null) of a job.
  await sql`create index tasks_job_parent_position on tasks (job_id, parent_id, position)`.execute(db);
  // Walking down a subtree (skipping an optional branch, dropping subtasks on retry).
  await sql`create index tasks_parent_id on tasks (parent_id) where parent_id is not null`.execute(db);
  // Cancelling a job touches only its queued tasks; requeueAll scans only queued tasks.
  await sql`create index tasks_queued on tasks (job_id) where state = 1`.execute(db);
  // Summing a job's progress reads only the tasks that reported some.
  await sql`create index tasks_job_progress on tasks (job_id) where progress is not null`.execute(db);

  await sql`
    create table task_deps (
      task_id text not null,
      depends_on_id text not null,
      primary key (task_id, depends_on_id)
    )`.execute(db);
  await sql`create index task_deps_depends_on_id on task_deps (depends_on_id)`.execute(db);

  await sql`
    create table outbox (
      task_id text not null,
      attempt integer not null,
      job_id text not null,
      created_at timestamptz not null default now(),
      primary key (task_id, attempt)
    )`.execute(db);
  await sql`create index outbox_created_at on outbox (created_at)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table if exists outbox, task_deps, tasks, jobs`.execute(db);
  await sql`drop sequence if exists task_change_seq`.execute(db);
}
