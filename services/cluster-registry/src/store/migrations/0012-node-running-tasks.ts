// The tasks each node runs now, as its broker last reported them (at most 100, oldest first).
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table nodes add column running_tasks jsonb not null default '[]'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table nodes drop column running_tasks`.execute(db);
}
