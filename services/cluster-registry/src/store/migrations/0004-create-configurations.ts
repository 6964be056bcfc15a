// Configurations are named cluster specs. Built-in ones have no team and every team sees them;
// corral/default is what a cluster is filled from when its creator names no configuration.
import { sql, type Kysely } from "kysely";

const DEFAULT_SPEC = {
  runnerCount: 1,
  runnerCpuCores: 2,
  runnerGpuCount: 0,
  runnerMemoryBytes: String(4 * 1024 ** 3),
  idleTimeoutSeconds: 1200,
};

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table configurations (
      id uuid primary key,
      team_id uuid references teams (id),
      name text not null,
      description text not null default '',
      spec jsonb not null,
      create_time timestamptz not null default now()
    )`.execute(db);
  await sql`create unique index configurations_team_name_key on configurations (team_id, name) where team_id is not null`.execute(db);
  await sql`create unique index configurations_builtin_name_key on configurations (name) where team_id is null`.execute(db);
  await sql`
    insert into configurations (id, team_id, name, description, spec)
    values ('00000000-0000-7000-8000-000000000001', null, 'corral/default',
            'The spec a cluster gets when no configuration is named.', ${JSON.stringify(DEFAULT_SPEC)}::jsonb)
    on conflict do nothing`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table configurations`.execute(db);
}
