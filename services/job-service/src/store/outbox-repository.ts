// The dispatch outbox: one row per (task, attempt) that is ready and not yet acknowledged by the
// broker. Rows are written in the transaction that made the task ready and deleted on ack.
import { sql } from "kysely";
import type { OutboxKey } from "../domain/ports.js";
import { COMPUTED, QUEUED } from "../domain/states.js";
import type { EnvelopeRow, JobsDb } from "./database.js";

/**
 * The most bytes of dependency outputs one envelope carries: with a 1 MiB input it stays well under
 * the 8 MiB message limit (the dispatcher sends envelopes in calls bounded by bytes too).
 */
export const MAX_DEPENDENCY_OUTPUT_BYTES = 4 * 1024 * 1024;

/**
 * The outputs of a task's computed dependencies (a failed optional one's output is not a result), by position, as one JSON value;
 * null when there are none, or when together they are over MAX_DEPENDENCY_OUTPUT_BYTES (then
 * `dependency_outputs_omitted`). Most tasks have no dependencies: the lateral finds no edge.
 */
const dependencyOutputs = sql`left join lateral (
    select case when sum(length(o.data)) <= ${sql.lit(MAX_DEPENDENCY_OUTPUT_BYTES)} then json_agg(json_build_object(
        'task_id', d.id, 'name', d.identifier_name, 'version', d.identifier_version,
        'encoding', o.encoding, 'data', encode(o.data, 'base64')) order by d.position, d.id) end as dependency_outputs,
      coalesce(sum(length(o.data)) > ${sql.lit(MAX_DEPENDENCY_OUTPUT_BYTES)}, false) as dependency_outputs_omitted
    from task_deps e join tasks d on d.id = e.depends_on_id
    join task_outputs o on o.task_id = d.id and o.attempt = d.attempt
    where e.task_id = t.id and t.waiting_deps = 0 and d.state = ${sql.lit(COMPUTED)}
  ) dep on true`;

const envelopeColumns = sql`t.id, t.job_id, j.team_id, t.cluster_id, t.cluster_slug, t.identifier_name,
  t.identifier_version, t.attempt, t.input, t.display, t.parent_id, j.name as job_name, j.trace_id, j.trace_flags, t.retry_count, t.max_retries,
  dep.dependency_outputs, dep.dependency_outputs_omitted,
  t.exec_timeout_ms, t.not_before, t.priority,
  t.concurrency_key, t.concurrency_limit, t.rate_limit_name, t.rate_limit, t.rate_period_ms`;

/**
 * Of the candidate tasks, those that are queued with every dependency met get an outbox row for
 * their current attempt (held until its not_before when that is later than `now`), and those with
 * a schedule-to-start timeout their deadline; returns their envelopes.
 */
export async function addReadyToOutbox(db: JobsDb, candidateIds: string[], now: Date): Promise<EnvelopeRow[]> {
  if (candidateIds.length === 0) return [];
  const { rows } = await sql<EnvelopeRow>`/* prepared */
    with r as (
      select ${envelopeColumns}, t.start_timeout_ms
      from tasks t join jobs j on j.id = t.job_id ${dependencyOutputs}
      where t.id = any(${candidateIds}::text[]) and t.state = ${sql.lit(QUEUED)} and t.waiting_deps = 0
    ),
    o as (
      insert into outbox (task_id, attempt, job_id, not_before)
      select id, attempt, job_id, case when not_before > ${now}::timestamptz then not_before end from r
      on conflict do nothing
    ),
    d as (
      update tasks t set start_deadline = greatest(${now}::timestamptz, coalesce(r.not_before, ${now}::timestamptz))
        + make_interval(secs => r.start_timeout_ms / 1000.0)
      from r where t.id = r.id and r.start_timeout_ms > 0
    )
    select * from r order by id`.execute(db);
  return rows;
}

/** Outbox rows for tasks known to be ready (new tasks with nothing to wait for). */
export async function insertOutbox(
  db: JobsDb,
  rows: ReadonlyArray<{ taskId: string; attempt: number; jobId: string; notBefore: Date | null }>,
): Promise<void> {
  if (rows.length === 0) return;
  await sql`/* prepared */ insert into outbox (task_id, attempt, job_id, not_before)
    select * from unnest(${rows.map((r) => r.taskId)}::text[], ${rows.map((r) => r.attempt)}::int[], ${rows.map((r) => r.jobId)}::text[],
      ${rows.map((r) => r.notBefore)}::timestamptz[])
    on conflict do nothing`.execute(db);
}

/** Deletes acknowledged rows, locking them in key order so concurrent deleters cannot deadlock. */
export async function deleteOutbox(db: JobsDb, keys: OutboxKey[]): Promise<number> {
  if (keys.length === 0) return 0;
  const { rows } = await sql<{ n: number }>`/* prepared */
    with k as (
      select o.task_id, o.attempt from outbox o
      join unnest(${keys.map((k) => k.taskId)}::text[], ${keys.map((k) => k.attempt)}::int[]) as k(task_id, attempt)
        on o.task_id = k.task_id and o.attempt = k.attempt
      order by o.task_id, o.attempt
      for update of o
    ),
    d as (delete from outbox o using k where o.task_id = k.task_id and o.attempt = k.attempt returning 1)
    select count(*)::int as n from d`.execute(db);
  return rows[0]?.n ?? 0;
}

export async function deleteOutboxOfJob(db: JobsDb, jobId: string): Promise<void> {
  await sql`delete from outbox where job_id = ${jobId}`.execute(db);
}

/**
 * Claims outbox rows older than `olderThanMs` by moving their timestamp to now (so another replica's
 * sweeper leaves them alone for a while), drops rows whose attempt is no longer queued, and returns
 * the envelopes to send again.
 */
export async function claimDueOutbox(db: JobsDb, olderThanMs: number, limit: number): Promise<EnvelopeRow[]> {
  const { rows } = await sql<EnvelopeRow & { live: boolean }>`
    with due as (
      select task_id, attempt from outbox
      where created_at < now() - make_interval(secs => ${olderThanMs / 1000}) and not_before is null
      order by created_at limit ${limit}
      for update skip locked
    ),
    claimed as (
      update outbox o set created_at = now() from due
      where o.task_id = due.task_id and o.attempt = due.attempt
      returning o.task_id, o.attempt
    )
    select ${envelopeColumns}, (t.state = ${sql.lit(QUEUED)} and t.attempt = c.attempt and j.failed = 0 and not j.canceled) as live
    from claimed c join tasks t on t.id = c.task_id join jobs j on j.id = t.job_id ${dependencyOutputs}`.execute(db);
  const dead = rows.filter((r) => !r.live);
  if (dead.length > 0) await deleteOutbox(db, dead.map((r) => ({ taskId: r.id, attempt: r.attempt })));
  return rows.filter((r) => r.live);
}

/**
 * Claims held rows whose time has come (a delayed start, a retry's backoff): they become plain
 * rows sent now (and again by the sweeper until acknowledged); returns the envelopes to send.
 */
export async function claimDelayedOutbox(db: JobsDb, now: Date, limit: number): Promise<EnvelopeRow[]> {
  const { rows } = await sql<EnvelopeRow & { live: boolean }>`
    with due as (
      select task_id, attempt from outbox
      where not_before <= ${now}::timestamptz
      order by not_before limit ${limit}
      for update skip locked
    ),
    claimed as (
      update outbox o set not_before = null, created_at = now() from due
      where o.task_id = due.task_id and o.attempt = due.attempt
      returning o.task_id, o.attempt
    )
    select ${envelopeColumns}, (t.state = ${sql.lit(QUEUED)} and t.attempt = c.attempt and j.failed = 0 and not j.canceled) as live
    from claimed c join tasks t on t.id = c.task_id join jobs j on j.id = t.job_id ${dependencyOutputs}`.execute(db);
  const dead = rows.filter((r) => !r.live);
  if (dead.length > 0) await deleteOutbox(db, dead.map((r) => ({ taskId: r.id, attempt: r.attempt })));
  return rows.filter((r) => r.live);
}

/** When the next held row falls due (undefined: none is held). */
export async function nextDelayedOutbox(db: JobsDb): Promise<Date | undefined> {
  const { rows } = await sql<{ at: Date | null }>`select min(not_before) as at from outbox where not_before is not null`.execute(db);
  return rows[0]?.at ?? undefined;
}

/** A page of every queued, dispatchable task of live jobs, by task id (to rebuild lost Redis queues). */
export async function queuedEnvelopesPage(db: JobsDb, afterId: string, limit: number): Promise<EnvelopeRow[]> {
  const { rows } = await sql<EnvelopeRow>`
    select ${envelopeColumns}
    from tasks t join jobs j on j.id = t.job_id ${dependencyOutputs}
    where t.state = ${sql.lit(QUEUED)} and t.waiting_deps = 0 and t.id > ${afterId} and j.failed = 0 and not j.canceled
      and (t.not_before is null or t.not_before <= now())
    order by t.id limit ${limit}`.execute(db);
  return rows;
}

export async function countOutbox(db: JobsDb): Promise<number> {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from outbox`.execute(db);
  return rows[0]?.n ?? 0;
}
