import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table locations (
      id uuid primary key,
      team_id uuid not null references teams (id),
      name text not null,
      provider text not null,
      region text not null,
      create_time timestamptz not null default now(),
      update_time timestamptz not null default now()
    )`.execute(db);
  await sql`create index locations_team_idx on locations (team_id, id)`.execute(db);
  await sql`
    create table hardware (
      id uuid primary key,
      team_id uuid not null references teams (id),
      name text not null,
      gpu_count integer not null,
      gpu_type text not null,
      cpu_cores integer not null,
      memory_bytes numeric(20, 0) not null,
      create_time timestamptz not null default now()
    )`.execute(db);
  await sql`create index hardware_team_idx on hardware (team_id, id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table hardware`.execute(db);
  await sql`drop table locations`.execute(db);
}
