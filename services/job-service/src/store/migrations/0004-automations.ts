// Automations (task prototypes that triggers submit as jobs), their triggers with each one's
// persisted cursor, and one row per fire: the unique key (automation, fire time or object) that a
// fire claims in the transaction that submits its job, so a fire runs once across replicas.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table jobs add column automation_id text`.execute(db);
  await sql`create index jobs_automation_id on jobs (automation_id, id) where automation_id is not null`.execute(db);
  await sql`
    create table automations (
      id text primary key,
      team_id text not null,
      name text not null,
      identifier_name text not null,
      identifier_version text not null,
      input bytea not null,
      display text not null,
      max_retries integer not null,
      cluster_slug text not null,
      overlap smallint not null,
      catch_up smallint not null,
      paused boolean not null default false,
      create_time timestamptz not null default now(),
      update_time timestamptz not null default now(),
      -- Cron fire times up to here are handled; the next is next_fire (null: no cron trigger, or paused).
      cron_cursor timestamptz not null default now(),
      next_fire timestamptz
    )`.execute(db);
  await sql`create index automations_team_id on automations (team_id, id)`.execute(db);
  await sql`create index automations_next_fire on automations (next_fire) where next_fire is not null`.execute(db);
  await sql`
    create table automation_triggers (
      id text primary key,
      automation_id text not null references automations (id) on delete cascade,
      position integer not null,
      kind text not null,
      spec jsonb not null,
      -- Storage triggers: objects changed before since are not new; cursor is the S3 start-after
      -- key or the directory's change-time watermark; next_poll is when to list again (null: cron, or paused).
      since timestamptz not null default now(),
      cursor text not null default '',
      next_poll timestamptz
    )`.execute(db);
  await sql`create index automation_triggers_automation_id on automation_triggers (automation_id, position)`.execute(db);
  await sql`create index automation_triggers_next_poll on automation_triggers (next_poll) where next_poll is not null`.execute(db);
  await sql`
    create table automation_fires (
      automation_id text not null references automations (id) on delete cascade,
      fire_key text not null,
      trigger_id text not null,
      fire_time timestamptz not null,
      object text not null default '',
      job_id text,
      skipped_reason text not null default '',
      create_time timestamptz not null default now(),
      primary key (automation_id, fire_key)
    )`.execute(db);
  await sql`create index automation_fires_recent on automation_fires (automation_id, create_time desc)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table if exists automation_fires`.execute(db);
  await sql`drop table if exists automation_triggers`.execute(db);
  await sql`drop table if exists automations`.execute(db);
  await sql`drop index if exists jobs_automation_id`.execute(db);
  await sql`alter table jobs drop column if exists automation_id`.execute(db);
}
