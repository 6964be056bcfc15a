// Reads for the scheduling sweeps: queued attempts past their schedule-to-start deadline.
import { sql } from "kysely";
import { QUEUED } from "../domain/states.js";
import type { JobsDb } from "./database.js";

export interface OverdueStart {
  id: string;
  attempt: number;
  job_id: string;
  team_id: string;
  cluster_id: string;
  start_timeout_ms: number;
}

/** Queued, ready attempts of live jobs whose start deadline is at or before `now`, oldest first. */
export async function overdueStarts(db: JobsDb, now: Date, limit: number): Promise<OverdueStart[]> {
  const { rows } = await sql<OverdueStart>`
    select t.id, t.attempt, t.job_id, j.team_id, t.cluster_id, t.start_timeout_ms
    from tasks t join jobs j on j.id = t.job_id
    where t.start_deadline <= ${now}::timestamptz and t.start_deadline is not null and t.state = ${sql.lit(QUEUED)}
      and t.waiting_deps = 0 and j.failed = 0 and not j.canceled
    order by t.start_deadline limit ${limit}`.execute(db);
  return rows;
}
