// The queued tasks of a job that could start now (dependencies met, not delayed), grouped by
// cluster and identifier: what "why does it wait" looks at.
import { sql } from "kysely";
import type { ReadyGroup } from "../domain/wait-reasons.js";
import { QUEUED } from "../domain/states.js";
import type { JobsDb } from "./database.js";

export async function readyQueuedGroups(db: JobsDb, jobId: string, now: Date): Promise<ReadyGroup[]> {
  const { rows } = await sql<ReadyGroup>`/* prepared */
    select cluster_slug, identifier_name, identifier_version, count(*)::int as n
    from tasks
    where job_id = ${jobId} and state = ${sql.lit(QUEUED)} and waiting_deps = 0
      and (not_before is null or not_before <= ${now}::timestamptz)
    group by cluster_slug, identifier_name, identifier_version
    order by cluster_slug, identifier_name, identifier_version`.execute(db);
  return rows;
}
