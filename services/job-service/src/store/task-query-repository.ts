// Reads of tasks for the public API: one level of the tree, and whole graphs for rendering.
import { sql } from "kysely";
import type { GraphTaskRow, JobRow, JobsDb, ProgressJson, TaskDetailRow, TaskEdgeRow } from "./database.js";
import { jobColumns, progressJson } from "./job-repository.js";
import { QUEUED, RUNNING } from "../domain/states.js";

/**
 * Why a queued task with a concurrency key or a rate limit may wait: the running tasks of its key
 * and the recent starts of its rate limit in its cluster (partial indexes of migration 0010);
 * null for every other task, which costs nothing.
 */
const gateOccupancy = sql`
  case when t.state = ${sql.lit(QUEUED)} and t.concurrency_key is not null then (
    select count(*)::int from tasks r
    where r.cluster_id = t.cluster_id and r.concurrency_key = t.concurrency_key and r.state = ${sql.lit(RUNNING)}
  ) end as concurrency_running,
  case when t.state = ${sql.lit(QUEUED)} and t.rate_limit_name is not null then (
    select count(*)::int from tasks r
    where r.cluster_id = t.cluster_id and r.rate_limit_name = t.rate_limit_name
      and r.start_time > now() - t.rate_period_ms * interval '1 millisecond'
  ) end as rate_recent_starts`;

const detailColumns = (includeInput: boolean, includeOutput = false) => sql`
  t.id, t.job_id, t.parent_id, t.position, t.identifier_name, t.identifier_version, t.display, t.state,
  t.cluster_slug, t.attempt, t.retry_count, t.lease_expiry_count, t.max_retries, t.optional, t.runner_id,
  t.start_time, t.stop_time, t.error, t.progress, t.subtask_count, t.exec_timeout_ms, t.start_timeout_ms, t.retry_backoff,
  t.not_before, t.start_deadline, t.error_kind, t.waiting_deps, t.priority,
  t.concurrency_key, t.concurrency_limit, t.rate_limit_name, t.rate_limit, t.rate_period_ms,
  ${gateOccupancy},
  ${includeInput ? sql`t.input` : sql`null::bytea as input`},
  ${includeOutput ? sql`o.encoding as output_encoding, o.data as output_data,` : sql``}
  (select array_agg(d.depends_on_id order by d.depends_on_id) from task_deps d where d.task_id = t.id) as depends_on`;

/** One level of a job's tree (roots when parentId is null), ordered by position, after `afterPosition`. */
export async function listTaskLevel(
  db: JobsDb,
  q: { jobId: string; parentId: string | null; afterPosition: number; limit: number; includeInput: boolean; includeOutput?: boolean },
): Promise<TaskDetailRow[]> {
  const parent = q.parentId === null ? sql`t.parent_id is null` : sql`t.parent_id = ${q.parentId}`;
  const { rows } = await sql<TaskDetailRow>`
    select ${detailColumns(q.includeInput, q.includeOutput)}
    from tasks t ${q.includeOutput ? outputJoin : sql``}
    where t.job_id = ${q.jobId} and ${parent} and t.position > ${q.afterPosition}
    order by t.position limit ${q.limit}`.execute(db);
  return rows;
}

/** The output of the task's current attempt (a computed one's, or what a failed one left to read). */
const outputJoin = sql`left join task_outputs o on o.task_id = t.id and o.attempt = t.attempt`;

export async function findTasks(db: JobsDb, jobId: string, taskIds: string[], full = false): Promise<TaskDetailRow[]> {
  if (taskIds.length === 0) return [];
  const { rows } = await sql<TaskDetailRow>`
    select ${detailColumns(full, full)} from tasks t ${full ? outputJoin : sql``}
    where t.job_id = ${jobId} and t.id = any(${taskIds}::text[]) order by t.id`.execute(db);
  return rows;
}

/** Up to `limit` tasks of a job in creation order (ids are time ordered), for drawing. */
export async function graphTasks(db: JobsDb, jobId: string, limit: number): Promise<GraphTaskRow[]> {
  const { rows } = await sql<GraphTaskRow>`
    select id, parent_id, identifier_name, identifier_version, display, state
    from tasks where job_id = ${jobId} order by id limit ${limit}`.execute(db);
  return rows;
}

export async function graphEdges(db: JobsDb, jobId: string): Promise<TaskEdgeRow[]> {
  const { rows } = await sql<TaskEdgeRow>`
    select d.task_id, d.depends_on_id from task_deps d join tasks t on t.id = d.task_id
    where t.job_id = ${jobId}`.execute(db);
  return rows;
}

/** Identifier × state groups of a job and the parent/dependency links between groups, for summaries. */
export async function graphSummary(db: JobsDb, jobId: string): Promise<{
  groups: { identifier_name: string; identifier_version: string; state: number; n: number }[];
  links: { from_key: string; to_key: string; kind: "parent" | "dependency"; n: number }[];
}> {
  const { rows: groups } = await sql<{ identifier_name: string; identifier_version: string; state: number; n: number }>`
    select identifier_name, identifier_version, state, count(*)::int as n from tasks where job_id = ${jobId}
    group by 1, 2, 3 order by 1, 2, 3`.execute(db);
  const key = (alias: string) =>
    sql`${sql.ref(`${alias}.identifier_name`)} || ' ' || ${sql.ref(`${alias}.identifier_version`)} || ' ' || ${sql.ref(`${alias}.state`)}::text`;
  const { rows: links } = await sql<{ from_key: string; to_key: string; kind: "parent" | "dependency"; n: number }>`
    select ${key("p")} as from_key, ${key("c")} as to_key, 'parent' as kind, count(*)::int as n
    from tasks c join tasks p on p.id = c.parent_id where c.job_id = ${jobId} group by 1, 2
    union all
    select ${key("p")}, ${key("c")}, 'dependency', count(*)::int
    from task_deps d join tasks c on c.id = d.task_id join tasks p on p.id = d.depends_on_id
    where c.job_id = ${jobId} group by 1, 2`.execute(db);
  return { groups, links };
}

/**
 * What WatchJob sends, read in one statement (one snapshot, one round trip): the team's job, its
 * progress, the newest change number of its tasks, and up to `limit` of its tasks changed after
 * `afterSeq` in change order (none when `afterSeq` is null: the first read). The tasks travel as
 * JSON inside the job's row; their timestamps come back as Dates as in the other reads.
 */
export async function watchSnapshot(
  db: JobsDb,
  teamId: string,
  jobId: string,
  afterSeq: number | null,
  limit: number,
): Promise<{ job: JobRow; progress: ProgressJson[]; lastSeq: number; tasks: TaskDetailRow[] } | undefined> {
  const { rows } = await sql<JobRow & { progress_json: ProgressJson[]; max_seq: number | null; changed: ChangedTaskJson[] | null }>`/* prepared */
    select ${jobColumns}, ${progressJson(sql.ref("jobs.id"))} as progress_json,
      (select max(change_seq) from tasks where job_id = jobs.id and ${afterSeq === null}) as max_seq,
      (select json_agg(c order by c.change_seq) from (
        select ${detailColumns(false)}, t.change_seq from tasks t
        where t.job_id = jobs.id and ${afterSeq !== null} and t.change_seq > ${afterSeq ?? 0}::bigint
        order by t.change_seq limit ${limit}
      ) c) as changed
    from jobs where id = ${jobId} and team_id = ${teamId}`.execute(db);
  const row = rows[0];
  if (!row) return undefined;
  const { progress_json: progress, max_seq, changed, ...job } = row;
  const date = (s: string | null) => (s === null ? null : new Date(s));
  const tasks = (changed ?? []).map(({ change_seq: _, start_time, stop_time, not_before, start_deadline, ...t }) => ({
    ...t,
    start_time: date(start_time),
    stop_time: date(stop_time),
    not_before: date(not_before),
    start_deadline: date(start_deadline),
  }));
  const lastSeq = afterSeq === null ? (max_seq ?? 0) : changed && changed.length > 0 ? changed[changed.length - 1]!.change_seq : afterSeq;
  return { job, progress, lastSeq, tasks };
}

/** A TaskDetailRow as json_agg gives it: timestamps as text. */
type ChangedTaskJson = Omit<TaskDetailRow, "start_time" | "stop_time" | "not_before" | "start_deadline"> & {
  start_time: string | null;
  stop_time: string | null;
  not_before: string | null;
  start_deadline: string | null;
  change_seq: number;
};
