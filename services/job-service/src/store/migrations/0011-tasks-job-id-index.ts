// GetJobSpans pages a job's tasks in id order (`job_id = $1 and id > $2 order by id`). Without an
// index on (job_id, id) Postgres walks the primary key from the page's start and filters by job:
// the first page of a job reads every older job's tasks (EXPLAIN on a job of 10,000 tasks among
// 160,000: 140,000 rows removed by the filter, 190 ms; with this index 28 ms, reading only the job's).
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index if not exists tasks_job_id_id on tasks (job_id, id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists tasks_job_id_id`.execute(db);
}
