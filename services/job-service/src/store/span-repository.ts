// Task attempt spans: the attempts retries superseded (written in the transaction that ended them),
// and the task columns the current attempts' spans are read from. Deleted with their tasks.
import { sql } from "kysely";
import type { SpanTask } from "../domain/traces/attempt-spans.js";
import type { JobRow, JobsDb, TaskSpanRow } from "./database.js";

/** Keeps superseded attempts as spans; a re-applied batch writes nothing twice. */
export async function insertSpans(db: JobsDb, rows: readonly TaskSpanRow[]): Promise<void> {
  if (rows.length === 0) return;
  await sql`/* prepared */
    insert into task_spans (task_id, attempt, job_id, runner_id, queue_time, start_time, stop_time, outcome, error)
    select * from unnest(
      ${rows.map((r) => r.task_id)}::text[], ${rows.map((r) => r.attempt)}::int[], ${rows.map((r) => r.job_id)}::text[],
      ${rows.map((r) => r.runner_id)}::text[], ${rows.map((r) => r.queue_time)}::timestamptz[],
      ${rows.map((r) => r.start_time)}::timestamptz[], ${rows.map((r) => r.stop_time)}::timestamptz[],
      ${rows.map((r) => r.outcome)}::smallint[], ${rows.map((r) => r.error)}::text[])
    on conflict do nothing`.execute(db);
}

/** A page of a job's tasks in id (submission) order, with their parents' current attempts (index tasks_job_id_id, migration 0011). */
export async function spanTasksPage(db: JobsDb, jobId: string, afterId: string, limit: number): Promise<SpanTask[]> {
  const { rows } = await sql<SpanTask>`
    select t.id, t.parent_id, t.identifier_name, t.identifier_version, t.display, t.cluster_slug, t.state, t.attempt,
      t.runner_id, t.queue_time, t.start_time, t.stop_time, t.error, t.error_kind, p.attempt as parent_attempt
    from tasks t left join tasks p on p.id = t.parent_id
    where t.job_id = ${jobId} and t.id > ${afterId}
    order by t.id limit ${limit}`.execute(db);
  return rows;
}

/** The superseded attempts of some tasks of a job. */
export async function supersededSpans(db: JobsDb, jobId: string, taskIds: readonly string[]): Promise<TaskSpanRow[]> {
  if (taskIds.length === 0) return [];
  const { rows } = await sql<TaskSpanRow>`
    select task_id, attempt, job_id, runner_id, queue_time, start_time, stop_time, outcome, error
    from task_spans where job_id = ${jobId} and task_id = any(${taskIds as string[]}::text[])
    order by task_id, attempt`.execute(db);
  return rows;
}

/** A stopped task's span columns with its job's trace. */
export type StoppedSpanTask = SpanTask & { job_id: string } & Pick<JobRow, "trace_id" | "trace_parent_span_id" | "trace_flags">;

/** Tasks a cancel or a failed branch stopped, with their jobs' traces (to export their spans). */
export async function stoppedSpanTasks(db: JobsDb, taskIds: readonly string[]): Promise<StoppedSpanTask[]> {
  if (taskIds.length === 0) return [];
  const { rows } = await sql<StoppedSpanTask>`
    select t.id, t.parent_id, t.identifier_name, t.identifier_version, t.display, t.cluster_slug, t.state, t.attempt,
      t.runner_id, t.queue_time, t.start_time, t.stop_time, t.error, t.error_kind, p.attempt as parent_attempt,
      t.job_id, j.trace_id, j.trace_parent_span_id, j.trace_flags
    from tasks t join jobs j on j.id = t.job_id left join tasks p on p.id = t.parent_id
    where t.id = any(${taskIds as string[]}::text[])`.execute(db);
  return rows;
}

/** The current attempt of each task (parents of attempts being exported). */
export async function currentAttempts(db: JobsDb, taskIds: readonly string[]): Promise<Map<string, number>> {
  if (taskIds.length === 0) return new Map();
  const { rows } = await sql<{ id: string; attempt: number }>`/* prepared */
    select id, attempt from tasks where id = any(${taskIds as string[]}::text[])`.execute(db);
  return new Map(rows.map((r) => [r.id, r.attempt]));
}
