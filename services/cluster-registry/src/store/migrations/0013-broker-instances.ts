// Broker processes that keep their nodes alive: a broker calls ReportPresence at least once per
// presence timeout naming its instance, and every node whose last report came from that instance
// stays as reported without being sent again.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table nodes add column broker_instance text not null default ''`.execute(db);
  await sql`
    create table broker_instances (
      instance text primary key,
      last_seen_time timestamptz not null
    )`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table broker_instances`.execute(db);
  await sql`alter table nodes drop column broker_instance`.execute(db);
}
