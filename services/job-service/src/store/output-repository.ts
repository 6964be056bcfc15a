// Task outputs: written set-based with the result batch that produced them, keyed by attempt.
import { sql } from "kysely";
import type { JobsDb, NewTaskOutputRow } from "./database.js";

/** Stores outputs; a result applied twice (a re-sent batch) writes its output once. */
export async function insertOutputs(db: JobsDb, rows: NewTaskOutputRow[]): Promise<void> {
  if (rows.length === 0) return;
  await sql`/* prepared */ insert into task_outputs (task_id, attempt, encoding, data)
    select * from unnest(${rows.map((r) => r.task_id)}::text[], ${rows.map((r) => r.attempt)}::int[],
      ${rows.map((r) => r.encoding)}::smallint[], ${rows.map((r) => r.data)}::bytea[])
    on conflict do nothing`.execute(db);
}
