// Concurrency keys and rate limits: the key a task's running attempts count against (with the
// limit it starts under) and the named rate limit of its starts (limit per period). The broker
// enforces both in Redis; these columns carry them to every attempt's envelope and explain a wait.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  // Nullable columns and constant defaults: Postgres adds them without rewriting the table.
  await sql`alter table tasks
    add column concurrency_key text,
    add column concurrency_limit integer not null default 0,
    add column rate_limit_name text,
    add column rate_limit integer not null default 0,
    add column rate_period_ms integer not null default 0`.execute(db);
  // Why a task waits: the running tasks of its key, and the recent starts of its rate limit, in
  // its cluster. Tasks without either stay out of both indexes.
  await sql`create index tasks_running_concurrency_keys on tasks (cluster_id, concurrency_key)
    where concurrency_key is not null and state = 2`.execute(db);
  await sql`create index tasks_rate_limit_starts on tasks (cluster_id, rate_limit_name, start_time)
    where rate_limit_name is not null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists tasks_rate_limit_starts`.execute(db);
  await sql`drop index if exists tasks_running_concurrency_keys`.execute(db);
  await sql`alter table tasks drop column concurrency_key, drop column concurrency_limit,
    drop column rate_limit_name, drop column rate_limit, drop column rate_period_ms`.execute(db);
}
