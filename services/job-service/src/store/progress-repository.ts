// Live progress of running tasks: written as their runners report it, outside the result batches.
import { sql } from "kysely";
import { QUEUED, RUNNING } from "../domain/states.js";
import { JOB_CHANGES_CHANNEL, type JobsDb, type ProgressJson } from "./database.js";

export interface RunningProgressRow {
  taskId: string;
  attempt: number;
  progress: ProgressJson[];
  /** Empty: keep the task's display. */
  display: string;
}

/**
 * Writes each entry whose task is still on that attempt and not ended, in one statement, and
 * notifies the jobs' watchers. A task row another transaction holds (its result being applied) is
 * skipped rather than waited for: the result carries the final progress anyway, and progress
 * writes then never queue behind, or deadlock with, result batches. Returns the entries written.
 */
export async function writeRunningProgress(db: JobsDb, rows: RunningProgressRow[]): Promise<number> {
  if (rows.length === 0) return 0;
  const { rows: out } = await sql<{ n: string }>`/* prepared */
    with u as (
      select * from unnest(
        ${rows.map((r) => r.taskId)}::text[], ${rows.map((r) => r.attempt)}::int[],
        ${rows.map((r) => (r.progress.length > 0 ? JSON.stringify(r.progress) : null))}::text[], ${rows.map((r) => r.display)}::text[]
      ) as u(id, attempt, progress, display)
    ),
    l as (
      select t.id from tasks t join u on u.id = t.id and u.attempt = t.attempt
      where t.state in (${sql.lit(QUEUED)}, ${sql.lit(RUNNING)})
      order by t.id
      for update of t skip locked
    ),
    w as (
      update tasks t set
        progress = u.progress::jsonb,
        display = case when u.display = '' then t.display else u.display end,
        change_seq = nextval('task_change_seq')
      from u join l on l.id = u.id
      where t.id = u.id
      returning t.job_id
    ),
    n as (select pg_notify(${JOB_CHANGES_CHANNEL}, job_id) from (select distinct job_id from w) j)
    select (select count(*) from w) as n, (select count(*) from n) as notified`.execute(db);
  return Number(out[0]?.n ?? 0);
}
