// What each idempotency key was first used for: a digest of the SubmitJob request, so a key
// reused for a different request is ALREADY_EXISTS instead of silently answering the first job.
// A table of its own (not a jobs column): written only for keyed submissions, read only on reuse.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table submission_digests (
      team_id text not null,
      idempotency_key text not null,
      digest text not null,
      primary key (team_id, idempotency_key)
    )`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table if exists submission_digests`.execute(db);
}
