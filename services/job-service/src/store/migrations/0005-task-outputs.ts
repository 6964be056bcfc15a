// What task attempts returned: one row per (task, attempt), written in the result batch's
// transaction. A retried attempt's output never replaces an earlier one's.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table task_outputs (
      task_id text not null references tasks (id) on delete cascade,
      attempt integer not null,
      encoding smallint not null,
      data bytea not null,
      create_time timestamptz not null default now(),
      primary key (task_id, attempt)
    )`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table if exists task_outputs`.execute(db);
}
