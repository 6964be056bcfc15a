// Jobs rows: creation, row locks that serialise every writer of a job, counters, reads and queries.
import { sql, type RawBuilder } from "kysely";
import type { JobQuery } from "../domain/ports.js";
import { QUEUED, type JobDelta } from "../domain/states.js";
import { newEdgeRows, newTaskColumns, newTaskRows } from "./task-repository.js";
import { openTaskReservation } from "./team-usage-repository.js";
import { JOB_CHANGES_CHANNEL, type JobRow, type JobsDb, type NewJob, type NewTaskRow, type ProgressJson, type TaskEdgeRow } from "./database.js";

/**
 * JobRow's columns, named: prepared statements (see PREPARED) keep their result shape when a later
 * migration adds a column, where `*` would make Postgres refuse them ("cached plan must not change
 * result type") on replicas still running while another one migrates.
 */
export const jobColumns = sql.raw(`id, team_id, name, cluster_id, cluster_slug, idempotency_key, canceled, submit_time, end_time,
  first_start_time, last_stop_time, compute_ms, queued, running, computed, failed, skipped, failed_optional, canceled_tasks,
  total, state, automation_id, task_defaults, trace_id, trace_parent_span_id, trace_flags`);

/**
 * A submission in one statement (so one round trip for a small one): the job, its tasks (a large
 * submission's first chunk, see insertSubmittedTasks for the rest), their dependency edges and the
 * outbox rows of the tasks that can start, and a NOTIFY to watchers (delivered at commit). Returns
 * the new job row, or undefined when nothing was written: the team already has a job with this
 * idempotency key, or, given `openTaskLimit`, the team's open tasks would pass it. The job's state
 * is a generated column, final as inserted.
 *
 * With `openTaskLimit` the statement also reserves the job's tasks in the team's open-task count
 * (see reserveOpenTasks), first, and writes the job only when that fits: one statement, so outside
 * a transaction it is one round trip and one commit, and the team's row stays locked only while it
 * runs. Only for a job without an idempotency key (a conflict would keep the reservation).
 */
export async function insertSubmission(
  db: JobsDb,
  job: NewJob,
  tasks: NewTaskRow[],
  edges: TaskEdgeRow[],
  openTaskLimit?: number,
): Promise<JobRow | undefined> {
  const reserving = openTaskLimit !== undefined;
  if (reserving && job.idempotency_key !== null) throw new Error("a submission with an idempotency key reserves its open tasks in its transaction");
  if (reserving && job.total > openTaskLimit) return undefined;
  const reserve = reserving ? sql`r as (${openTaskReservation(job.team_id, job.total, openTaskLimit)}),` : sql``;
  const { rows } = await sql<JobRow & { notified: unknown }>`/* prepared */
    with ${reserve} j as (
      insert into jobs (id, team_id, name, cluster_id, cluster_slug, idempotency_key, queued, total, automation_id, task_defaults,
        trace_id, trace_parent_span_id, trace_flags)
      select ${job.id}::text, ${job.team_id}::text, ${job.name}::text, ${job.cluster_id}::text, ${job.cluster_slug}::text,
        ${job.idempotency_key}::text, ${job.queued}::int, ${job.total}::int, ${job.automation_id ?? null}::text,
        ${job.task_defaults ?? null}::jsonb, ${job.trace_id ?? null}::text, ${job.trace_parent_span_id ?? null}::text,
        ${job.trace_flags ?? 1}::smallint
      ${reserving ? sql`where exists (select 1 from r)` : sql``}
      on conflict (team_id, idempotency_key) where idempotency_key is not null do nothing
      returning ${jobColumns}
    ),
    t as (
      insert into tasks ${newTaskColumns}
      ${newTaskRows(tasks)}
      where exists (select 1 from j)
      returning id, attempt, job_id, state, waiting_deps, not_before
    ),
    e as (
      insert into task_deps (task_id, depends_on_id)
      ${newEdgeRows(edges)}
      where exists (select 1 from j)
    ),
    o as (
      insert into outbox (task_id, attempt, job_id, not_before)
      select id, attempt, job_id, not_before from t where state = ${sql.lit(QUEUED)} and waiting_deps = 0
    ),
    n as (select pg_notify(${JOB_CHANGES_CHANNEL}, id) from j)
    select ${jobColumns}, (select count(*) from n) as notified from j`.execute(db);
  const row = rows[0];
  if (!row) return undefined;
  const { notified: _, ...jobRow } = row;
  return jobRow;
}

export async function findJobByIdempotencyKey(db: JobsDb, teamId: string, key: string): Promise<JobRow | undefined> {
  const { rows } = await sql<JobRow>`/* prepared */
    select ${jobColumns} from jobs where team_id = ${teamId} and idempotency_key = ${key}`.execute(db);
  return rows[0];
}

/** The job of the team, or undefined (another team's job is as unknown as a missing one). */
export async function findJob(db: JobsDb, teamId: string, jobId: string): Promise<JobRow | undefined> {
  const { rows } = await sql<JobRow>`/* prepared */ select ${jobColumns} from jobs where id = ${jobId} and team_id = ${teamId}`.execute(db);
  return rows[0];
}

/**
 * Locks, in id order, the jobs of the given tasks (a task never changes job). The tasks are read by
 * their ids first (a materialized step), so no planner estimate turns it into a scan of tasks.
 */
export async function lockJobsOfTasks(db: JobsDb, taskIds: string[]): Promise<JobRow[]> {
  if (taskIds.length === 0) return [];
  const { rows } = await sql<JobRow>`/* prepared */
    with t as materialized (select distinct job_id from tasks where id = any(${taskIds}::text[]))
    select ${jobColumns} from jobs where id in (select job_id from t)
    order by id for update`.execute(db);
  return rows;
}

export async function lockJob(db: JobsDb, teamId: string, jobId: string): Promise<JobRow | undefined> {
  const { rows } = await sql<JobRow>`/* prepared */
    select ${jobColumns} from jobs where id = ${jobId} and team_id = ${teamId} for update`.execute(db);
  return rows[0];
}

/**
 * Ends a transaction's changes to jobs in one statement: adds its counter and run-statistic
 * deltas to each of `jobIds` (those without a delta are still settled), stamps (or clears, after
 * a retry) each job's end time from its new counters, and tells watchers through one NOTIFY per
 * job, delivered when the transaction commits. A job ends when the generated `state` column says
 * COMPLETED, FAILED or CANCELED: failed > 0, canceled, or nothing queued or running.
 */
export async function settleJobs(db: JobsDb, jobIds: string[], deltas: JobDelta[]): Promise<void> {
  const byJob = new Map(deltas.map((d) => [d.jobId, d]));
  const ids = [...new Set([...jobIds, ...byJob.keys()])];
  if (ids.length === 0) return;
  const of = ids.map((id) => byJob.get(id));
  const col = (name: keyof JobDelta["counts"]) => of.map((d) => d?.counts[name] ?? 0);
  await sql`/* prepared */
    with u as (
      update jobs j set
        queued = j.queued + d.queued, running = j.running + d.running, computed = j.computed + d.computed,
        failed = j.failed + d.failed, skipped = j.skipped + d.skipped, failed_optional = j.failed_optional + d.failed_optional,
        canceled_tasks = j.canceled_tasks + d.canceled_tasks, total = j.total + d.total,
        compute_ms = j.compute_ms + d.compute_ms,
        first_start_time = least(j.first_start_time, d.first_start),
        last_stop_time = greatest(j.last_stop_time, d.last_stop),
        end_time = case
          when j.failed + d.failed > 0 or j.canceled or j.queued + d.queued + j.running + d.running = 0
          then coalesce(j.end_time, now())
        end
      from unnest(
        ${ids}::text[], ${col("queued")}::int[], ${col("running")}::int[], ${col("computed")}::int[],
        ${col("failed")}::int[], ${col("skipped")}::int[], ${col("failed_optional")}::int[], ${col("canceled_tasks")}::int[],
        ${of.map((d) => d?.total ?? 0)}::int[], ${of.map((d) => d?.computeMs ?? 0)}::bigint[],
        ${of.map((d) => d?.firstStart ?? null)}::timestamptz[], ${of.map((d) => d?.lastStop ?? null)}::timestamptz[]
      ) as d(id, queued, running, computed, failed, skipped, failed_optional, canceled_tasks, total, compute_ms,
        first_start, last_stop)
      where j.id = d.id
      returning j.id
    )
    select pg_notify(${JOB_CHANGES_CHANNEL}, id) from u`.execute(db);
}

export async function setJobCanceled(db: JobsDb, jobId: string, canceled: boolean): Promise<void> {
  await sql`update jobs set canceled = ${canceled} where id = ${jobId}`.execute(db);
}

/** Each job with its progress (as GetJob sums it), so listings show how far jobs are. */
export async function queryJobs(db: JobsDb, q: JobQuery): Promise<Array<JobRow & { progress_json: ProgressJson[] }>> {
  const conditions = [sql`team_id = ${q.teamId}`];
  if (q.startTime) conditions.push(sql`submit_time >= ${q.startTime}`);
  if (q.endTime) conditions.push(sql`submit_time < ${q.endTime}`);
  if (q.states.length > 0) conditions.push(sql`state = any(${q.states}::smallint[])`);
  if (q.name !== "") conditions.push(sql`strpos(lower(name), lower(${q.name})) > 0`);
  if (q.automationId) conditions.push(sql`automation_id = ${q.automationId}`);
  if (q.clusterSlugs.length > 0) conditions.push(sql`cluster_slug = any(${q.clusterSlugs}::text[])`);
  if (q.taskStateColumns.length > 0) {
    conditions.push(sql`(${sql.join(q.taskStateColumns.map((c) => sql`${sql.ref(c)} > 0`), sql` or `)})`);
  }
  if (q.idFrom) conditions.push(sql`id >= ${q.idFrom}`);
  if (q.idTo) conditions.push(sql`id < ${q.idTo}`);
  if (q.afterId) conditions.push(q.ascending ? sql`id > ${q.afterId}` : sql`id < ${q.afterId}`);
  const { rows } = await sql<JobRow & { progress_json: ProgressJson[] }>`
    select jobs.*, ${progressJson(sql.ref("jobs.id"))} as progress_json
    from jobs where ${sql.join(conditions, sql` and `)}
    order by id ${q.ascending ? sql`asc` : sql`desc`} limit ${q.limit}`.execute(db);
  return rows;
}

/**
 * The team's job with its progress (progressJson) in one statement: GetJob and
 * GetJobProgress, which clients poll, cost one round trip.
 */
export async function findJobWithProgress(
  db: JobsDb,
  teamId: string,
  jobId: string,
): Promise<{ job: JobRow; progress: ProgressJson[] } | undefined> {
  const { rows } = await sql<JobRow & { progress_json: ProgressJson[] }>`/* prepared */
    select ${jobColumns}, ${progressJson(sql.ref("jobs.id"))} as progress_json
    from jobs where id = ${jobId} and team_id = ${teamId}`.execute(db);
  const row = rows[0];
  if (!row) return undefined;
  const { progress_json: progress, ...job } = row;
  return { job, progress };
}

/**
 * A job's progress as one JSON array, for reads of the job row: each task's indicators (of its
 * last reported attempt) summed per label.
 */
export function progressJson(jobId: RawBuilder<unknown>) {
  return sql`coalesce((
      select json_agg(json_build_object('label', s.label, 'total', s.total, 'done', s.done) order by s.label)
      from (${progressSums(jobId)}) s
    ), '[]'::json)`;
}

/** Each task's indicators of one job (`jobId`: a value or a column) summed per label. */
function progressSums(jobId: RawBuilder<unknown>) {
  return sql`select p.label, sum(p.total)::int8 as total, sum(p.done)::int8 as done
    from tasks t cross join lateral jsonb_to_recordset(t.progress) as p(label text, total numeric, done numeric)
    where t.job_id = ${jobId} and t.progress is not null and t.progress <> '[]'::jsonb
    group by p.label`;
}
