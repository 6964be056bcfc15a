// The per-team count of open (queued + running) tasks: read for an early answer, reserved with a
// conditional update at the end of a submission, adjusted with the job counters of every batch.
import { sql } from "kysely";
import type { JobsDb } from "./database.js";

/** Open tasks of each team (0 for a team without a row); no lock: for messages and early refusals. */
export async function readOpenTasks(db: JobsDb, teamIds: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>(teamIds.map((t) => [t, 0]));
  if (teamIds.length === 0) return out;
  const { rows } = await sql<{ team_id: string; open_tasks: number }>`/* prepared */
    select team_id, open_tasks from team_usage where team_id = any(${teamIds}::text[])`.execute(db);
  for (const r of rows) out.set(r.team_id, r.open_tasks);
  return out;
}

/**
 * Adds `n` open tasks to the team if the total stays within `limit`, in one statement (the row
 * lock it takes is held until commit, so concurrent reservations of the team queue up briefly).
 * Returns false, changing nothing, when the total would exceed the limit.
 */
export async function reserveOpenTasks(db: JobsDb, teamId: string, n: number, limit: number): Promise<boolean> {
  if (n > limit) return false;
  const { rows } = await sql<{ open_tasks: number }>`/* prepared */ ${openTaskReservation(teamId, n, limit)}`.execute(db);
  return rows.length > 0;
}

/**
 * The upsert of reserveOpenTasks, alone or as a CTE of a larger statement: it returns the row
 * (open_tasks) only when the team's total stays within `limit`. A team without a row gets one with
 * `n`, so the caller refuses `n > limit` first.
 */
export function openTaskReservation(teamId: string, n: number, limit: number) {
  return sql`insert into team_usage as u (team_id, open_tasks) values (${teamId}, ${n})
    on conflict (team_id) do update set open_tasks = u.open_tasks + excluded.open_tasks
    where u.open_tasks + excluded.open_tasks <= ${limit}
    returning open_tasks`;
}

/**
 * Applies a transaction's change of open tasks per team in one statement: decreases always,
 * increases only when the total stays within `limit`. Returns the teams whose increase was
 * refused (nothing changed for them). Rows are written in team order (INSERT ... SELECT ...
 * ORDER BY takes the row locks in that order), so two batches over the same teams cannot
 * deadlock. Every team with jobs has a row (written by its first submission, or by the migration).
 */
export async function addOpenTasks(db: JobsDb, deltas: ReadonlyMap<string, number>, limit: number): Promise<string[]> {
  const changed = [...deltas].filter(([, d]) => d !== 0);
  if (changed.length === 0) return [];
  const { rows } = await sql<{ team_id: string }>`/* prepared */
    insert into team_usage as u (team_id, open_tasks)
    select team_id, delta from unnest(${changed.map(([t]) => t)}::text[], ${changed.map(([, d]) => d)}::int[]) as d(team_id, delta)
    order by team_id
    on conflict (team_id) do update set open_tasks = u.open_tasks + excluded.open_tasks
    where excluded.open_tasks <= 0 or u.open_tasks + excluded.open_tasks <= ${limit}
    returning u.team_id`.execute(db);
  const applied = new Set(rows.map((r) => r.team_id));
  return changed.filter(([t, d]) => d > 0 && !applied.has(t)).map(([t]) => t);
}
