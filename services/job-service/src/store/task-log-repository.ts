// Task log SQL: attempts' counts, lines, trimming over the bound, reads by cursor, retention.
// Its tables live beside the `jobs` schema's others (migration 0008) and are typed here.
import { sql, type Generated, type Kysely, type Selectable, type Transaction } from "kysely";
import type { JobsDatabase } from "./database.js";

export interface TaskLogAttemptsTable {
  task_id: string;
  attempt: number;
  job_id: string;
  lines: Generated<number>;
  bytes: Generated<string>;
  dropped: Generated<string>;
}

export interface TaskLogsTable {
  seq: Generated<string>;
  job_id: string;
  task_id: string;
  attempt: number;
  time: Date;
  level: number;
  message: string;
  fields: string;
  bytes: number;
  dropped: Generated<number>;
}

export interface TaskLogTables {
  task_log_attempts: TaskLogAttemptsTable;
  task_logs: TaskLogsTable;
}

export type TaskLogsDb = Kysely<JobsDatabase> | Transaction<JobsDatabase>;

/** A stored line with its task's name, as reads return it. */
export type TaskLogRow = Selectable<TaskLogsTable> & { task_name: string };

/** What an incoming attempt is checked against: its task. */
export interface LogTargetRow {
  id: string;
  job_id: string;
  cluster_id: string;
  attempt: number;
}

/** One channel for every job's new log lines; the payload is the job id. */
export const TASK_LOGS_CHANNEL = "corral_task_logs";

export async function findLogTargets(db: TaskLogsDb, taskIds: string[]): Promise<Map<string, LogTargetRow>> {
  if (taskIds.length === 0) return new Map();
  const { rows } = await sql<LogTargetRow>`
    select id, job_id, cluster_id, attempt from tasks where id = any(${taskIds}::text[])`.execute(db);
  return new Map(rows.map((r) => [r.id, r]));
}

export interface AttemptCountsRow {
  task_id: string;
  attempt: number;
  lines: number;
  bytes: number;
}

/**
 * Adds lines and bytes to each attempt's counts (creating its row), in key order so concurrent
 * batches lock attempts in one order; answers the counts after the addition.
 */
export async function addAttemptCounts(
  db: TaskLogsDb,
  rows: Array<{ task_id: string; attempt: number; job_id: string; lines: number; bytes: number }>,
): Promise<AttemptCountsRow[]> {
  if (rows.length === 0) return [];
  const sorted = [...rows].sort((a, b) => (a.task_id === b.task_id ? a.attempt - b.attempt : a.task_id < b.task_id ? -1 : 1));
  const { rows: out } = await sql<AttemptCountsRow>`
    insert into task_log_attempts as a (task_id, attempt, job_id, lines, bytes)
    select * from unnest(${sorted.map((r) => r.task_id)}::text[], ${sorted.map((r) => r.attempt)}::int[],
      ${sorted.map((r) => r.job_id)}::text[], ${sorted.map((r) => r.lines)}::int[], ${sorted.map((r) => r.bytes)}::bigint[])
    order by 1, 2
    on conflict (task_id, attempt) do update set lines = a.lines + excluded.lines, bytes = a.bytes + excluded.bytes
    returning task_id, attempt, lines, bytes::float8 as bytes`.execute(db);
  return out;
}

export type NewLogLine = Omit<TaskLogsTable, "seq" | "dropped"> & { dropped?: number; seq?: string };

/** Inserts lines in the order given (their seq follows it). */
export async function insertLogLines(db: TaskLogsDb, lines: NewLogLine[]): Promise<void> {
  if (lines.length === 0) return;
  await sql`insert into task_logs (job_id, task_id, attempt, time, level, message, fields, bytes, dropped)
    select j, t, a, tm, lv, m, f, b, d from unnest(${lines.map((l) => l.job_id)}::text[], ${lines.map((l) => l.task_id)}::text[],
      ${lines.map((l) => l.attempt)}::int[], ${lines.map((l) => l.time)}::timestamptz[], ${lines.map((l) => l.level)}::smallint[],
      ${lines.map((l) => l.message)}::text[], ${lines.map((l) => l.fields)}::text[], ${lines.map((l) => l.bytes)}::int[],
      ${lines.map((l) => l.dropped ?? 0)}::int[]) with ordinality as u(j, t, a, tm, lv, m, f, b, d, n)
    order by n`.execute(db);
}

/** What trimming removed from one attempt. */
export interface Trimmed {
  /** Regular lines deleted, and their bytes. */
  lines: number;
  bytes: number;
  /** Lines the deleted markers stood for. */
  markerDropped: number;
  /** The newest deleted row: where the new marker goes. */
  lastSeq: string | null;
  lastTime: Date | null;
}

/**
 * Deletes an attempt's oldest rows (markers included) until at most `keep` regular lines of at
 * most `maxBytes` are left.
 */
export async function trimAttempt(db: TaskLogsDb, taskId: string, attempt: number, keep: number, maxBytes: number): Promise<Trimmed> {
  const { rows } = await sql<{ lines: number; bytes: number; marker_dropped: number; last_seq: string | null; last_time: Date | null }>`
    with ranked as (
      select seq, row_number() over w as rn, sum(bytes) over w as tail
      from task_logs where task_id = ${taskId} and attempt = ${attempt} and dropped = 0
      window w as (order by seq desc)
    ), cut as (
      select coalesce(min(seq) filter (where rn <= ${keep} and tail <= ${maxBytes}), 9223372036854775807) as seq from ranked
    ), gone as (
      delete from task_logs where task_id = ${taskId} and attempt = ${attempt} and seq < (select seq from cut)
      returning seq, time, bytes, dropped
    )
    select count(*) filter (where dropped = 0)::int as lines,
      coalesce(sum(bytes) filter (where dropped = 0), 0)::float8 as bytes,
      coalesce(sum(dropped), 0)::int as marker_dropped,
      max(seq)::text as last_seq,
      max(time) as last_time
    from gone`.execute(db);
  const r = rows[0]!;
  return { lines: r.lines, bytes: r.bytes, markerDropped: r.marker_dropped, lastSeq: r.last_seq, lastTime: r.last_time };
}

/** Takes lines off an attempt's counts and records how many were dropped. */
export async function subtractAttemptCounts(db: TaskLogsDb, taskId: string, attempt: number, lines: number, bytes: number, dropped: number): Promise<void> {
  await sql`update task_log_attempts set lines = lines - ${lines}, bytes = bytes - ${bytes}, dropped = dropped + ${dropped}
    where task_id = ${taskId} and attempt = ${attempt}`.execute(db);
}

/** Inserts a marker row at a given seq (one a deleted row had: it sorts where the dropped lines were). */
export async function insertMarkerAt(db: TaskLogsDb, marker: NewLogLine & { seq: string }): Promise<void> {
  await sql`insert into task_logs (seq, job_id, task_id, attempt, time, level, message, fields, bytes, dropped)
    values (${marker.seq}::bigint, ${marker.job_id}, ${marker.task_id}, ${marker.attempt}, ${marker.time}, ${marker.level},
      ${marker.message}, ${marker.fields}, ${marker.bytes}, ${marker.dropped ?? 0})`.execute(db);
}

export async function notifyTaskLogs(db: TaskLogsDb, jobIds: string[]): Promise<void> {
  if (jobIds.length === 0) return;
  await sql`select pg_notify(${TASK_LOGS_CHANNEL}, j) from unnest(${jobIds}::text[]) as j`.execute(db);
}

/** The job's state when it is the team's, else undefined. */
export async function jobStateOf(db: TaskLogsDb, teamId: string, jobId: string): Promise<number | undefined> {
  const { rows } = await sql<{ state: number }>`select state from jobs where id = ${jobId} and team_id = ${teamId}`.execute(db);
  return rows[0]?.state;
}

export interface LogQuery {
  jobId: string;
  taskId?: string;
  attempt?: number;
  afterSeq: string;
  limit: number;
}

/** A job's lines after a cursor, in stored order. */
export async function listLogLines(db: TaskLogsDb, q: LogQuery): Promise<TaskLogRow[]> {
  const task = q.taskId ? sql`and l.task_id = ${q.taskId}` : sql``;
  const attempt = q.attempt ? sql`and l.attempt = ${q.attempt}` : sql``;
  const { rows } = await sql<TaskLogRow>`
    select l.seq::text as seq, l.job_id, l.task_id, l.attempt, l.time, l.level, l.message, l.fields, l.bytes, l.dropped,
      t.identifier_name as task_name
    from task_logs l join tasks t on t.id = l.task_id
    where l.job_id = ${q.jobId} ${task} ${attempt} and l.seq > ${q.afterSeq}::bigint
    order by l.seq limit ${q.limit}`.execute(db);
  return rows;
}

/** Deletes the logs of jobs that ended before `before` (the retention setting); returns attempts removed. */
export async function deleteLogsOfJobsEndedBefore(db: TaskLogsDb, before: Date, limit: number): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    with doomed as (
      select a.task_id, a.attempt from task_log_attempts a join jobs j on j.id = a.job_id
      where j.end_time is not null and j.end_time < ${before} limit ${limit}
    ), gone as (
      delete from task_log_attempts a using doomed d where a.task_id = d.task_id and a.attempt = d.attempt returning 1
    ) select count(*)::int as n from gone`.execute(db);
  return rows[0]!.n;
}
