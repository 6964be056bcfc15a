// Gateway routes (DESIGN §10): a team's mapping from a task identifier to an HTTP endpoint.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table routes (
      id uuid primary key,
      team_id uuid not null references teams (id),
      name text not null,
      version text not null,
      method text not null,
      url text not null,
      headers jsonb not null,
      timeout_ms integer not null,
      max_attempts integer not null,
      initial_backoff_ms integer not null,
      max_backoff_ms integer not null,
      description text not null,
      create_time timestamptz not null default now(),
      -- One route per identifier in a team: a gateway must know which endpoint a task goes to.
      unique (team_id, name, version)
    )`.execute(db);
  await sql`create index routes_team_idx on routes (team_id, id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table routes`.execute(db);
}
