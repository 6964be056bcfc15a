// Which clusters the registry provisions: those whose own spec (or a configuration the caller
// named) set runner_count, not every cluster that corral/default filled a runner_count into.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table clusters add column provisioned boolean not null default false`.execute(db);
  // Clusters whose runners agents already run keep them; hand-run ones stop being provisioned.
  await sql`update clusters set provisioned = true where id in (select cluster_id from placements)`.execute(db);
  await sql`create index clusters_provisioned on clusters (team_id) where provisioned`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table clusters drop column provisioned`.execute(db);
}
