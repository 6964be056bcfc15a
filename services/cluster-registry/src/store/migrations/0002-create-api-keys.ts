import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table api_keys (
      id uuid primary key,
      key_id text not null unique,
      team_id uuid not null references teams (id),
      name text not null,
      secret_hash bytea not null,
      create_time timestamptz not null default now(),
      revoke_time timestamptz
    )`.execute(db);
  await sql`create index api_keys_team_idx on api_keys (team_id, id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table api_keys`.execute(db);
}
