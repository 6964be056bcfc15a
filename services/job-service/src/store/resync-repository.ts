// Reads for ResyncDispatch (a broker's Redis lost its data): the running attempts whose leases
// went with it.
import { sql } from "kysely";
import { RUNNING } from "../domain/states.js";
import type { JobsDb } from "./database.js";

/** A page of tasks RUNNING since before `startedBefore`, by task id. */
export async function runningAttemptsPage(
  db: JobsDb,
  startedBefore: Date,
  afterId: string,
  limit: number,
): Promise<Array<{ id: string; attempt: number }>> {
  const { rows } = await sql<{ id: string; attempt: number }>`
    select id, attempt from tasks
    where state = ${sql.lit(RUNNING)} and id > ${afterId} and (start_time is null or start_time < ${startedBefore})
    order by id limit ${limit}`.execute(db);
  return rows;
}
