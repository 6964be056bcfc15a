// The digest of the request each idempotency key was first used for (see migration 0005).
import { sql } from "kysely";
import type { JobsDb } from "./database.js";

/** Records the key's request digest; the first writer's digest stays (a replay writes the same). */
export async function saveSubmissionDigest(db: JobsDb, teamId: string, key: string, digest: string): Promise<void> {
  await sql`/* prepared */
    insert into submission_digests (team_id, idempotency_key, digest) values (${teamId}, ${key}, ${digest})
    on conflict (team_id, idempotency_key) do nothing`.execute(db);
}

/** The digest recorded for the key; undefined for keys used before digests were recorded. */
export async function findSubmissionDigest(db: JobsDb, teamId: string, key: string): Promise<string | undefined> {
  const { rows } = await sql<{ digest: string }>`/* prepared */
    select digest from submission_digests where team_id = ${teamId} and idempotency_key = ${key}`.execute(db);
  return rows[0]?.digest;
}
