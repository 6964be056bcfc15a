// Set-based statements over tasks and their dependency edges: every function is one statement
// (or a few), whatever the number of tasks it touches.
import { sql } from "kysely";
import type { ReleasedDependant, ReleasedParent, SkippedBranches } from "../domain/ports.js";
import { INSERT_CHUNK, yieldToEventLoop } from "../domain/write-chunks.js";
import { CANCELED, COMPUTED, FAILED, FAILED_OPTIONAL, QUEUED, RUNNING, SKIPPED } from "../domain/states.js";
import { SpanOutcome, TaskErrorKind } from "@corral/proto";
import type { CanceledTaskRow, JobsDb, NewTaskRow, TaskEdgeRow, TaskStateRow } from "./database.js";

/** The columns a new task is inserted with, and those columns' values for `tasks` (unnest rows). */
export const newTaskColumns = sql`(id, job_id, parent_id, position, cluster_id, cluster_slug, identifier_name,
  identifier_version, input, display, state, max_retries, optional, waiting_deps, has_dependants,
  exec_timeout_ms, start_timeout_ms, retry_backoff, not_before, start_deadline, priority,
  concurrency_key, concurrency_limit, rate_limit_name, rate_limit, rate_period_ms)`;

export function newTaskRows(tasks: NewTaskRow[]) {
  return sql`select * from unnest(
    ${tasks.map((t) => t.id)}::text[], ${tasks.map((t) => t.job_id)}::text[],
    ${tasks.map((t) => t.parent_id)}::text[], ${tasks.map((t) => t.position)}::int[],
    ${tasks.map((t) => t.cluster_id)}::text[], ${tasks.map((t) => t.cluster_slug)}::text[],
    ${tasks.map((t) => t.identifier_name)}::text[], ${tasks.map((t) => t.identifier_version)}::text[],
    ${tasks.map((t) => t.input)}::bytea[], ${tasks.map((t) => t.display)}::text[],
    ${tasks.map((t) => t.state)}::smallint[], ${tasks.map((t) => t.max_retries)}::int[],
    ${tasks.map((t) => t.optional)}::bool[], ${tasks.map((t) => t.waiting_deps)}::int[],
    ${tasks.map((t) => t.has_dependants)}::bool[], ${tasks.map((t) => t.exec_timeout_ms)}::int[],
    ${tasks.map((t) => t.start_timeout_ms)}::int[], ${tasks.map((t) => (t.retry_backoff === null ? null : JSON.stringify(t.retry_backoff)))}::jsonb[],
    ${tasks.map((t) => t.not_before)}::timestamptz[], ${tasks.map((t) => t.start_deadline)}::timestamptz[],
    ${tasks.map((t) => t.priority)}::smallint[],
    ${tasks.map((t) => t.concurrency_key)}::text[], ${tasks.map((t) => t.concurrency_limit)}::int[],
    ${tasks.map((t) => t.rate_limit_name)}::text[], ${tasks.map((t) => t.rate_limit)}::int[],
    ${tasks.map((t) => t.rate_period_ms)}::int[])`;
}

export async function insertTasks(db: JobsDb, tasks: NewTaskRow[]): Promise<void> {
  for (let i = 0; i < tasks.length; i += INSERT_CHUNK) {
    if (i > 0) await yieldToEventLoop();
    await sql`/* prepared */ insert into tasks ${newTaskColumns} ${newTaskRows(tasks.slice(i, i + INSERT_CHUNK))}`.execute(db);
  }
}

/**
 * More tasks of a submission whose job row is written: the tasks, their edges and the outbox rows
 * of those that can start, in statements of INSERT_CHUNK tasks.
 */
export async function insertSubmittedTasks(db: JobsDb, tasks: NewTaskRow[], edges: TaskEdgeRow[]): Promise<void> {
  for (let i = 0; i < tasks.length; i += INSERT_CHUNK) {
    if (i > 0) await yieldToEventLoop();
    await sql`/* prepared */
      with t as (
        insert into tasks ${newTaskColumns} ${newTaskRows(tasks.slice(i, i + INSERT_CHUNK))}
        returning id, attempt, job_id, state, waiting_deps, not_before
      )
      insert into outbox (task_id, attempt, job_id, not_before)
      select id, attempt, job_id, not_before from t where state = ${sql.lit(QUEUED)} and waiting_deps = 0`.execute(db);
  }
  await insertEdges(db, edges);
}

/** The rows of `edges` for `task_deps (task_id, depends_on_id)` (unnest rows). */
export function newEdgeRows(edges: TaskEdgeRow[]) {
  return sql`select * from unnest(${edges.map((e) => e.task_id)}::text[], ${edges.map((e) => e.depends_on_id)}::text[])`;
}

export async function insertEdges(db: JobsDb, edges: TaskEdgeRow[]): Promise<void> {
  for (let i = 0; i < edges.length; i += INSERT_CHUNK) {
    if (i > 0) await yieldToEventLoop();
    await sql`/* prepared */ insert into task_deps (task_id, depends_on_id) ${newEdgeRows(edges.slice(i, i + INSERT_CHUNK))}`.execute(db);
  }
}

/** Reads tasks for the state machine; callers hold their jobs' row locks, which serialise writers. */
export async function loadTasks(db: JobsDb, taskIds: string[]): Promise<TaskStateRow[]> {
  if (taskIds.length === 0) return [];
  const { rows } = await sql<TaskStateRow>`/* prepared */
    select id, job_id, parent_id, state, attempt, retry_count, lease_expiry_count, max_retries, optional,
      waiting_deps, has_dependants, open_children, subtask_count, runner_id, start_time, stop_time, error, display, progress,
      compute_ms, cluster_id, cluster_slug, exec_timeout_ms, start_timeout_ms, retry_backoff, not_before, error_kind,
      queue_time, identifier_name, identifier_version
    from tasks where id = any(${taskIds}::text[])`.execute(db);
  return rows;
}

/**
 * Writes the state machine's columns of many tasks in one statement. Progress and display only
 * where `ownsLive` is true: otherwise they keep what the row has now, which live progress
 * (progress-repository.ts) may have written after the batch read the row.
 */
export async function updateTasks(db: JobsDb, rows: TaskStateRow[], ownsLive: boolean[]): Promise<void> {
  if (rows.length === 0) return;
  await sql`/* prepared */
    update tasks t set
      state = u.state, attempt = u.attempt, retry_count = u.retry_count, lease_expiry_count = u.lease_expiry_count,
      open_children = u.open_children, subtask_count = u.subtask_count, runner_id = u.runner_id,
      start_time = u.start_time, stop_time = u.stop_time, error = u.error,
      display = case when u.owns_live then u.display else t.display end,
      progress = case when u.owns_live then u.progress::jsonb else t.progress end, compute_ms = u.compute_ms, not_before = u.not_before, error_kind = u.error_kind,
      queue_time = u.queue_time, change_seq = nextval('task_change_seq')
    from unnest(
      ${rows.map((r) => r.id)}::text[], ${rows.map((r) => r.state)}::smallint[],
      ${rows.map((r) => r.attempt)}::int[], ${rows.map((r) => r.retry_count)}::int[],
      ${rows.map((r) => r.lease_expiry_count)}::int[], ${rows.map((r) => r.open_children)}::int[],
      ${rows.map((r) => r.subtask_count)}::int[], ${rows.map((r) => r.runner_id)}::text[],
      ${rows.map((r) => r.start_time)}::timestamptz[], ${rows.map((r) => r.stop_time)}::timestamptz[],
      ${rows.map((r) => r.error)}::text[], ${rows.map((r) => r.display)}::text[],
      ${rows.map((r) => (r.progress === null ? null : JSON.stringify(r.progress)))}::text[],
      ${rows.map((r) => r.compute_ms)}::bigint[], ${rows.map((r) => r.not_before)}::timestamptz[],
      ${rows.map((r) => r.error_kind)}::smallint[], ${rows.map((r) => r.queue_time)}::timestamptz[],
      ${ownsLive}::bool[]
    ) as u(id, state, attempt, retry_count, lease_expiry_count, open_children, subtask_count, runner_id,
      start_time, stop_time, error, display, progress, compute_ms, not_before, error_kind, queue_time, owns_live)
    where t.id = u.id`.execute(db);
}

/**
 * For each task, the nearest optional ancestor (walking up through non-optional ones), if any:
 * a failure under it skips the rest of that optional branch instead of failing the job.
 */
export async function nearestOptionalAncestors(db: JobsDb, taskIds: string[]): Promise<Map<string, string>> {
  if (taskIds.length === 0) return new Map();
  const { rows } = await sql<{ origin: string; ancestor: string }>`
    with recursive up as (
      select t.id as origin, p.id, p.parent_id, p.optional
      from tasks t join tasks p on p.id = t.parent_id
      where t.id = any(${taskIds}::text[])
      union all
      select up.origin, p.id, p.parent_id, p.optional
      from up join tasks p on p.id = up.parent_id
      where not up.optional
    )
    select origin, id as ancestor from up where optional`.execute(db);
  return new Map(rows.map((r) => [r.origin, r.ancestor]));
}

/**
 * Marks optional branches failed: the root becomes FAILED_OPTIONAL, what is left below it (queued,
 * running, or canceled by a job cancel and so waiting for a retry) SKIPPED.
 */
export async function skipBranches(db: JobsDb, rootIds: string[], now: Date): Promise<SkippedBranches> {
  const { rows: subtree } = await sql<{ id: string }>`
    with recursive sub as (
      select id from tasks where parent_id = any(${rootIds}::text[])
      union all
      select t.id from tasks t join sub on t.parent_id = sub.id
    )
    select id from sub`.execute(db);
  const subtreeIds = subtree.map((r) => r.id);
  const { rows: skipped } = await sql<{ id: string; job_id: string; old_state: number }>`
    with s as (
      select id, state from tasks where id = any(${subtreeIds}::text[]) and state in (${sql.lit(QUEUED)}, ${sql.lit(RUNNING)}, ${sql.lit(CANCELED)}) for update
    )
    update tasks t set state = ${sql.lit(SKIPPED)}, open_children = 0, change_seq = nextval('task_change_seq'), stop_time = coalesce(t.stop_time, ${now}::timestamptz)
    from s where t.id = s.id
    returning t.id, t.job_id, s.state as old_state`.execute(db);
  // Nothing below a failed optional branch is waited for any more.
  await sql`update tasks set open_children = 0 where id = any(${subtreeIds}::text[]) and open_children <> 0`.execute(db);
  const { rows: failedRoots } = await sql<{ id: string; job_id: string }>`
    update tasks set state = ${sql.lit(FAILED_OPTIONAL)}, open_children = 0, change_seq = nextval('task_change_seq')
    where id = any(${rootIds}::text[]) and state = ${sql.lit(COMPUTED)}
    returning id, job_id`.execute(db);
  return { subtreeIds, skipped, failedRoots };
}

/**
 * Cancels the queued tasks of the given jobs (a failed or canceled job starts nothing more); their
 * attempts end at `now`, the cancel time their spans show.
 */
export async function cancelQueuedTasks(db: JobsDb, jobIds: string[], now: Date): Promise<CanceledTaskRow[]> {
  if (jobIds.length === 0) return [];
  const { rows } = await sql<CanceledTaskRow>`
    update tasks set state = ${sql.lit(CANCELED)}, stop_time = ${now}::timestamptz, change_seq = nextval('task_change_seq')
    where job_id = any(${jobIds}::text[]) and state = ${sql.lit(QUEUED)}
    returning id, job_id, attempt, cluster_id, waiting_deps`.execute(db);
  return rows;
}

/** Counts down the unmet dependencies of the dependants of tasks that are now done. */
export async function releaseDependants(
  db: JobsDb,
  doneIds: string[],
): Promise<ReleasedDependant[]> {
  if (doneIds.length === 0) return [];
  const { rows } = await sql<ReleasedDependant>`/* prepared */
    update tasks t set waiting_deps = t.waiting_deps - d.n
    from (
      select task_id, count(*)::int as n from task_deps where depends_on_id = any(${doneIds}::text[]) group by task_id
    ) d
    where t.id = d.task_id
    returning t.id, t.waiting_deps, t.state`.execute(db);
  return rows;
}

/**
 * Counts down the open children of the parents of tasks that are now done. The done tasks are read
 * by their ids alone (a materialized step): with `parent_id is not null` beside the ids, a planner
 * whose statistics predate a large fan-out took tasks_parent_id instead and read every sibling,
 * 87 ms a batch under a 10,000-task parent (auto_explain in a bench run).
 */
export async function releaseParents(db: JobsDb, doneIds: string[]): Promise<ReleasedParent[]> {
  if (doneIds.length === 0) return [];
  const { rows } = await releaseParentsStatement(doneIds).execute(db);
  return rows;
}

/** The statement of releaseParents (its plan is under test). */
export function releaseParentsStatement(doneIds: string[]) {
  return sql<ReleasedParent>`/* prepared */
    with done as materialized (select parent_id from tasks where id = any(${doneIds}::text[]))
    update tasks t set open_children = t.open_children - d.n
    from (
      select parent_id, count(*)::int as n from done where parent_id is not null group by parent_id
    ) d
    where t.id = d.parent_id
    returning t.id, t.parent_id, t.open_children, t.state, t.has_dependants`;
}

/**
 * RetryJob: failed and canceled tasks get a new attempt and are queued again; the subtasks of those
 * tasks' earlier attempts are deleted. Returns the re-queued tasks with their state before.
 */
export async function requeueFailedTasks(
  db: JobsDb,
  jobId: string,
): Promise<{ requeued: { id: string; old_state: number }[]; dropped: { state: number; n: number }[] }> {
  // The attempts it replaces keep their spans (outcome: SpanOutcome FAILED, TIMED_OUT,
  // LEASE_EXPIRED or CANCELED, as spansOfTasks reads them from a task row).
  const { rows: requeued } = await sql<{ id: string; old_state: number }>`
    with r as (
      select id, state, attempt, runner_id, queue_time, start_time, stop_time, error, error_kind
      from tasks where job_id = ${jobId} and state in (${sql.lit(FAILED)}, ${sql.lit(CANCELED)}) for update
    ),
    s as (
      insert into task_spans (task_id, attempt, job_id, runner_id, queue_time, start_time, stop_time, outcome, error)
      select id, attempt, ${jobId}, runner_id, queue_time, start_time,
        case when state = ${sql.lit(FAILED)} or (state = ${sql.lit(CANCELED)} and stop_time >= queue_time) then stop_time end,
        case when state = ${sql.lit(CANCELED)} then ${sql.lit(SpanOutcome.CANCELED)}
          when error_kind = ${sql.lit(TaskErrorKind.TIMED_OUT)} then ${sql.lit(SpanOutcome.TIMED_OUT)}
          when error_kind = ${sql.lit(TaskErrorKind.LEASE_EXPIRED)} then ${sql.lit(SpanOutcome.LEASE_EXPIRED)}
          else ${sql.lit(SpanOutcome.FAILED)} end,
        case when state = ${sql.lit(FAILED)} then error else '' end
      from r
      on conflict do nothing
    )
    update tasks t set state = ${sql.lit(QUEUED)}, attempt = t.attempt + 1, retry_count = 0, lease_expiry_count = 0,
      error = '', error_kind = 0, runner_id = '', open_children = 0, subtask_count = 0, not_before = null,
      queue_time = now(), change_seq = nextval('task_change_seq')
    from r where t.id = r.id
    returning t.id, r.state as old_state`.execute(db);
  if (requeued.length === 0) return { requeued, dropped: [] };
  const { rows: dropped } = await sql<{ state: number; n: number }>`
    with recursive sub as (
      select id from tasks where parent_id = any(${requeued.map((r) => r.id)}::text[])
      union all
      select t.id from tasks t join sub on t.parent_id = sub.id
    ),
    e as (delete from task_deps where task_id in (select id from sub)),
    o as (delete from outbox where task_id in (select id from sub)),
    d as (delete from tasks where id in (select id from sub) returning state)
    select state, count(*)::int as n from d group by state`.execute(db);
  return { requeued, dropped };
}

/** Queued tasks of a job whose dependencies are met, e.g. to hand them to the broker. */
export async function readyTaskIdsOfJob(db: JobsDb, jobId: string): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    select id from tasks where job_id = ${jobId} and state = ${sql.lit(QUEUED)} and waiting_deps = 0`.execute(db);
  return rows.map((r) => r.id);
}

/** Running tasks of a job (to revoke their leases). */
export async function runningTaskIdsOfJob(db: JobsDb, jobId: string): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`select id from tasks where job_id = ${jobId} and state = ${sql.lit(RUNNING)}`.execute(db);
  return rows.map((r) => r.id);
}

/** Team of each task's job, to resolve the cluster slugs of subtasks before the batch transaction. */
export async function teamsOfTasks(db: JobsDb, taskIds: string[]): Promise<Map<string, string>> {
  if (taskIds.length === 0) return new Map();
  const { rows } = await sql<{ id: string; team_id: string }>`/* prepared */
    select t.id, j.team_id from tasks t join jobs j on j.id = t.job_id where t.id = any(${taskIds}::text[])`.execute(db);
  return new Map(rows.map((r) => [r.id, r.team_id]));
}
