// Whether any task depends on a task, so finishing one that nothing depends on skips the lookup of
// its dependants. Rows written before this migration (and by replicas that do not know the
// column yet) read as true: their dependants are looked up as before.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  // A constant default: Postgres adds the column without rewriting the table.
  await sql`alter table tasks add column has_dependants boolean not null default true`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table tasks drop column has_dependants`.execute(db);
}
