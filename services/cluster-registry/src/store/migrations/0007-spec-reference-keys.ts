// The location and hardware profile a cluster or configuration spec names become foreign keys
// (columns generated from the spec), so deleting a location or hardware profile that a spec
// still names fails in Postgres, whatever runs at the same time.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  for (const table of ["clusters", "configurations"]) {
    await sql`
      alter table ${sql.table(table)}
        add column location_id uuid generated always as (nullif(spec ->> 'locationId', '')::uuid) stored
          references locations (id),
        add column hardware_id uuid generated always as (nullif(spec ->> 'hardwareId', '')::uuid) stored
          references hardware (id)`.execute(db);
    await sql`create index ${sql.id(`${table}_location_id_idx`)} on ${sql.table(table)} (location_id) where location_id is not null`.execute(db);
    await sql`create index ${sql.id(`${table}_hardware_id_idx`)} on ${sql.table(table)} (hardware_id) where hardware_id is not null`.execute(db);
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ["clusters", "configurations"]) {
    await sql`alter table ${sql.table(table)} drop column location_id, drop column hardware_id`.execute(db);
  }
}
