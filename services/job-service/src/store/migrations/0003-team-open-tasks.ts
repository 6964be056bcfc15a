// Each team's open tasks (queued + running), the figure the queued-task quota admits against.
// Kept in the same transactions that change the jobs' counters, so a conditional update of one
// row per team admits submissions atomically across job-service replicas.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table team_usage (
      team_id text primary key,
      open_tasks integer not null default 0
    )`.execute(db);
  // Jobs written before this migration count from the start.
  await sql`
    insert into team_usage (team_id, open_tasks)
    select team_id, sum(queued + running)::int from jobs group by team_id`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table if exists team_usage`.execute(db);
}
