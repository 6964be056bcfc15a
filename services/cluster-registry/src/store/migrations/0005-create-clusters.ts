import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table clusters (
      id uuid primary key,
      team_id uuid not null references teams (id),
      slug text not null,
      name text not null,
      description text not null default '',
      spec jsonb not null,
      is_default boolean not null default false,
      create_time timestamptz not null default now(),
      update_time timestamptz not null default now(),
      unique (team_id, slug)
    )`.execute(db);
  // At most one default cluster per team: concurrent first calls race on this index, one wins.
  await sql`create unique index clusters_team_default_key on clusters (team_id) where is_default`.execute(db);
  await sql`create index clusters_team_idx on clusters (team_id, id)`.execute(db);
  await sql`create index clusters_team_name_idx on clusters (team_id, name)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table clusters`.execute(db);
}
