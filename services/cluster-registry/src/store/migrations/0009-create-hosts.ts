// Provisioning (DESIGN §10): hosts running `corral agent`, the runners placed on them, their bounded
// logs, each provisioned cluster's state, one reconcile lease per team, and runner-scoped API keys.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    alter table api_keys
      add column scope text not null default 'team' check (scope in ('team', 'runner')),
      add column cluster_id uuid references clusters (id) on delete cascade`.execute(db);
  await sql`
    create table hosts (
      id uuid primary key,
      team_id uuid not null references teams (id),
      name text not null,
      cpu_cores integer not null,
      memory_bytes numeric(20, 0) not null,
      gpu_count integer not null,
      gpu_type text not null,
      location_id uuid references locations (id) on delete set null,
      labels jsonb not null,
      agent_version text not null,
      draining boolean not null default false,
      -- The registry replica and stream holding the agent; null once the stream is gone.
      replica_id text,
      connection_id text,
      connect_time timestamptz not null,
      last_seen_time timestamptz not null,
      unique (team_id, name)
    )`.execute(db);
  await sql`
    create table placements (
      runner_id text primary key,
      team_id uuid not null references teams (id),
      cluster_id uuid not null references clusters (id) on delete cascade,
      host_id uuid not null references hosts (id) on delete cascade,
      cpu_cores integer not null,
      memory_bytes numeric(20, 0) not null,
      gpu_count integer not null,
      gpu_type text not null,
      desired text not null check (desired in ('run', 'stop')),
      state text not null check (state in ('starting', 'running', 'restarting', 'stopping', 'stopped')),
      -- The last command handed to the agent's stream: '' (none yet), 'launch' or 'stop'.
      sent text not null default '',
      api_key_id uuid references api_keys (id) on delete set null,
      pid integer not null default 0,
      restarts integer not null default 0,
      last_exit text not null default '',
      create_time timestamptz not null default now(),
      start_time timestamptz
    )`.execute(db);
  await sql`create index placements_host_idx on placements (host_id)`.execute(db);
  await sql`create index placements_team_idx on placements (team_id, cluster_id)`.execute(db);
  await sql`
    create table runner_logs (
      runner_id text not null,
      seq bigserial not null,
      time timestamptz not null,
      stream text not null,
      text text not null,
      primary key (runner_id, seq)
    )`.execute(db);
  await sql`
    create table runner_log_stats (
      runner_id text primary key,
      team_id uuid not null references teams (id),
      lines integer not null default 0,
      bytes bigint not null default 0,
      dropped bigint not null default 0,
      update_time timestamptz not null default now()
    )`.execute(db);
  await sql`
    create table cluster_provisioning (
      cluster_id uuid primary key references clusters (id) on delete cascade,
      team_id uuid not null references teams (id),
      -- Stopped by hand or idle: desired runners are 0 until started or woken.
      stopped boolean not null default false,
      stop_reason text not null default '',
      state text not null default 'pending',
      state_reason text not null default '',
      desired_runners integer not null default 0,
      running_runners integer not null default 0,
      -- The last time work was queued or running (or the cluster was started): the idle clock.
      last_work_time timestamptz not null default now()
    )`.execute(db);
  await sql`
    create table provisioning_leases (
      team_id uuid primary key references teams (id),
      owner text not null,
      expire_time timestamptz not null
    )`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table provisioning_leases, cluster_provisioning, runner_log_stats, runner_logs, placements, hosts`.execute(db);
  await sql`alter table api_keys drop column scope, drop column cluster_id`.execute(db);
}
