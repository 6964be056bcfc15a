// Releases (DESIGN §10): bundles stored as chunked blobs, releases naming them, deployments of a
// release version on a cluster (with a trigger that NOTIFYs every change), and runners' load reports.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  // A blob is 'uploading' while its chunks arrive and 'stored' once every byte matched the
  // expected size and digest; only stored blobs are read or shared, and a failed or abandoned
  // upload is deleted (its chunks with it).
  await sql`
    create table release_blobs (
      id uuid primary key,
      team_id uuid not null references teams (id),
      digest text not null,
      size_bytes bigint not null,
      state text not null check (state in ('uploading', 'stored')),
      create_time timestamptz not null default now()
    )`.execute(db);
  // Content-addressed per team: one stored blob per digest.
  await sql`create unique index release_blobs_team_digest_key on release_blobs (team_id, digest) where state = 'stored'`.execute(db);
  await sql`create index release_blobs_uploading_idx on release_blobs (create_time) where state = 'uploading'`.execute(db);
  await sql`
    create table release_blob_chunks (
      blob_id uuid not null references release_blobs (id) on delete cascade,
      seq integer not null,
      data bytea not null,
      primary key (blob_id, seq)
    )`.execute(db);
  await sql`
    create table releases (
      id uuid primary key,
      team_id uuid not null references teams (id),
      name text not null,
      version text not null,
      version_key text collate "C" not null,
      digest text not null,
      size_bytes bigint not null,
      blob_id uuid not null references release_blobs (id),
      manifest jsonb not null,
      create_time timestamptz not null default now(),
      unique (team_id, name, version)
    )`.execute(db);
  await sql`create index releases_team_order_idx on releases (team_id, name, version_key desc, version desc)`.execute(db);
  await sql`create index releases_blob_idx on releases (blob_id)`.execute(db);
  await sql`
    create table deployments (
      team_id uuid not null references teams (id),
      cluster_id uuid not null references clusters (id) on delete cascade,
      name text not null,
      release_id uuid not null references releases (id),
      deploy_time timestamptz not null default now(),
      primary key (cluster_id, name)
    )`.execute(db);
  await sql`create index deployments_release_idx on deployments (release_id)`.execute(db);
  await sql`create index deployments_team_idx on deployments (team_id, cluster_id)`.execute(db);
  // Every change, whoever makes it (a cluster's deletion cascades here too), wakes the watchers of
  // its cluster on every registry replica; Postgres folds repeats within a transaction into one.
  await sql`
    create function notify_deployment_change() returns trigger language plpgsql as $$
    begin
      perform pg_notify('corral_deployments', coalesce(new.cluster_id, old.cluster_id)::text);
      return null;
    end
    $$`.execute(db);
  await sql`
    create trigger deployments_notify after insert or update or delete on deployments
    for each row execute function notify_deployment_change()`.execute(db);
  await sql`
    create table release_status (
      team_id uuid not null references teams (id),
      runner_id text not null,
      cluster_id uuid not null references clusters (id) on delete cascade,
      releases jsonb not null,
      report_time timestamptz not null default now(),
      primary key (team_id, runner_id)
    )`.execute(db);
  await sql`create index release_status_cluster_idx on release_status (cluster_id, runner_id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table release_status`.execute(db);
  await sql`drop table deployments`.execute(db);
  await sql`drop function notify_deployment_change()`.execute(db);
  await sql`drop table releases`.execute(db);
  await sql`drop table release_blob_chunks`.execute(db);
  await sql`drop table release_blobs`.execute(db);
}
