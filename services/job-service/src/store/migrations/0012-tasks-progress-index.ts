// A job's progress sums the indicators of its tasks that have any, through a partial index on
// tasks(job_id). Until this migration every ended task stored an empty list ('[]') rather than
// null, so the index held every ended task and each GetJob of a 10,000-task job read all of them
// (13 ms of Postgres per call in a bench run, polled every few milliseconds by waiting clients).
// Tasks now store null for no indicators; the index, and the query, leave out both null and '[]'
// (old rows keep theirs: no rewrite of the tasks table).
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists tasks_job_progress`.execute(db);
  await sql`create index tasks_job_progress on tasks (job_id) where progress is not null and progress <> '[]'::jsonb`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists tasks_job_progress`.execute(db);
  await sql`create index tasks_job_progress on tasks (job_id) where progress is not null`.execute(db);
}
