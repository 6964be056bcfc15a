import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table nodes (
      team_id uuid not null references teams (id),
      runner_id text not null,
      session_id text not null,
      cluster_id text not null,
      cluster_slug text not null,
      hostname text not null,
      hardware jsonb not null,
      identifiers jsonb not null,
      labels jsonb not null,
      slots integer not null,
      busy_slots integer not null,
      broker_id text not null,
      state text not null check (state in ('online', 'draining', 'offline')),
      connect_time timestamptz not null,
      last_seen_time timestamptz not null,
      report_time timestamptz not null,
      primary key (team_id, runner_id)
    )`.execute(db);
  await sql`create index nodes_team_cluster_idx on nodes (team_id, cluster_id, runner_id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table nodes`.execute(db);
}
