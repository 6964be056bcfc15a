// Automations, their triggers and fires: CRUD, the scheduler's claims (due rows locked with
// SKIP LOCKED so replicas split the work) and the unique fire rows that make a fire run once.
import { sql } from "kysely";
import type { AutomationChanges, FireClaim, NewAutomationRow as NewAutomation } from "../domain/ports.js";
import type { AutomationRow, FireRow, JobsDb, TriggerRow, TriggerSpec } from "./database.js";

interface NewTrigger {
  id: string;
  spec: TriggerSpec;
}

export async function insertAutomation(db: JobsDb, a: NewAutomation, triggers: NewTrigger[], now: Date): Promise<void> {
  await db
    .insertInto("automations")
    .values({ ...a, create_time: now, update_time: now, cron_cursor: now })
    .execute();
  await insertTriggers(db, a.id, triggers, a.paused ? null : now, now);
}

/** `nextPoll`: when storage triggers first list (null while paused). */
export async function insertTriggers(db: JobsDb, automationId: string, triggers: NewTrigger[], nextPoll: Date | null, since: Date): Promise<void> {
  if (triggers.length === 0) return;
  await db
    .insertInto("automation_triggers")
    .values(
      triggers.map((t, i) => ({
        id: t.id,
        automation_id: automationId,
        position: i,
        kind: t.spec.kind,
        spec: JSON.stringify(t.spec),
        since,
        next_poll: t.spec.kind === "cron" ? null : nextPoll,
      })),
    )
    .execute();
}

export async function deleteTriggers(db: JobsDb, automationId: string): Promise<void> {
  await db.deleteFrom("automation_triggers").where("automation_id", "=", automationId).execute();
}

export async function findAutomation(db: JobsDb, teamId: string, id: string, lock = false): Promise<AutomationRow | undefined> {
  let q = db.selectFrom("automations").selectAll().where("id", "=", id).where("team_id", "=", teamId);
  if (lock) q = q.forUpdate();
  return q.executeTakeFirst();
}

export async function triggersOf(db: JobsDb, automationIds: string[]): Promise<TriggerRow[]> {
  if (automationIds.length === 0) return [];
  return db.selectFrom("automation_triggers").selectAll().where("automation_id", "in", automationIds).orderBy("automation_id").orderBy("position").execute();
}

export async function listAutomations(db: JobsDb, teamId: string, afterId: string | undefined, limit: number): Promise<AutomationRow[]> {
  let q = db.selectFrom("automations").selectAll().where("team_id", "=", teamId);
  if (afterId) q = q.where("id", ">", afterId);
  return q.orderBy("id").limit(limit).execute();
}

export async function updateAutomation(db: JobsDb, id: string, changes: AutomationChanges, now: Date): Promise<void> {
  await db.updateTable("automations").set({ ...changes, update_time: now }).where("id", "=", id).execute();
}

/** Storage triggers of the automation list next at `nextPoll` (null: paused). */
export async function setTriggersNextPoll(db: JobsDb, automationId: string, nextPoll: Date | null): Promise<void> {
  await db.updateTable("automation_triggers").set({ next_poll: nextPoll }).where("automation_id", "=", automationId).where("kind", "!=", "cron").execute();
}

export async function deleteAutomation(db: JobsDb, teamId: string, id: string): Promise<boolean> {
  const r = await db.deleteFrom("automations").where("id", "=", id).where("team_id", "=", teamId).executeTakeFirst();
  return r.numDeletedRows > 0n;
}

export async function recentFires(db: JobsDb, automationId: string, limit: number): Promise<FireRow[]> {
  const { rows } = await sql<FireRow>`
    select f.*, j.state as job_state from automation_fires f left join jobs j on j.id = f.job_id
    where f.automation_id = ${automationId} order by f.create_time desc, f.fire_time desc limit ${limit}`.execute(db);
  return rows;
}

/** Whether anything is due at `now`, and else the earliest time something will be (one cheap query). */
export async function nextDue(db: JobsDb): Promise<Date | null> {
  const { rows } = await sql<{ t: Date | null }>`/* prepared */
    select least(
      (select min(next_fire) from automations where next_fire is not null),
      (select min(next_poll) from automation_triggers where next_poll is not null)
    ) as t`.execute(db);
  return rows[0]?.t ?? null;
}

/** Unpaused automations whose next cron fire is due, locked; rows another replica holds are skipped. */
export async function lockDueAutomations(db: JobsDb, now: Date, limit: number): Promise<AutomationRow[]> {
  const { rows } = await sql<AutomationRow>`
    select * from automations where next_fire <= ${now} and not paused
    order by next_fire limit ${limit} for update skip locked`.execute(db);
  return rows;
}

/** Storage triggers due to list, locked (with their automation's row unlocked); held ones are skipped. */
export async function lockDueTriggers(db: JobsDb, now: Date, limit: number, onlyId?: string): Promise<TriggerRow[]> {
  const { rows } = await sql<TriggerRow>`
    select t.* from automation_triggers t
    where t.next_poll is not null and ${onlyId === undefined ? sql`t.next_poll <= ${now}` : sql`t.id = ${onlyId}`}
    order by t.next_poll limit ${limit} for update of t skip locked`.execute(db);
  return rows;
}

export async function findAutomationById(db: JobsDb, id: string): Promise<AutomationRow | undefined> {
  return db.selectFrom("automations").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function advanceTrigger(db: JobsDb, id: string, cursor: string, nextPoll: Date): Promise<void> {
  await db.updateTable("automation_triggers").set({ cursor, next_poll: nextPoll }).where("id", "=", id).execute();
}

/**
 * Claims one fire: inserts its unique row. False when the fire was claimed before (by this or
 * another replica, now or before a restart), in which case nothing may be submitted for it.
 */
export async function claimFire(
  db: JobsDb,
  fire: FireClaim,
): Promise<boolean> {
  const { rows } = await sql`/* prepared */
    insert into automation_fires (automation_id, fire_key, trigger_id, fire_time, object, skipped_reason)
    values (${fire.automationId}, ${fire.fireKey}, ${fire.triggerId}, ${fire.fireTime}, ${fire.object}, ${fire.skippedReason})
    on conflict (automation_id, fire_key) do nothing
    returning 1`.execute(db);
  return rows.length > 0;
}

export async function setFireJob(db: JobsDb, automationId: string, fireKey: string, jobId: string): Promise<void> {
  await db.updateTable("automation_fires").set({ job_id: jobId }).where("automation_id", "=", automationId).where("fire_key", "=", fireKey).execute();
}

export async function setFireSkipped(db: JobsDb, automationId: string, fireKey: string, reason: string): Promise<void> {
  await db.updateTable("automation_fires").set({ skipped_reason: reason }).where("automation_id", "=", automationId).where("fire_key", "=", fireKey).execute();
}

/** Of `keys`, those the automation has fired (or skipped) already. */
export async function seenFireKeys(db: JobsDb, automationId: string, keys: string[]): Promise<Set<string>> {
  if (keys.length === 0) return new Set();
  const { rows } = await sql<{ fire_key: string }>`
    select fire_key from automation_fires where automation_id = ${automationId} and fire_key = any(${keys}::text[])`.execute(db);
  return new Set(rows.map((r) => r.fire_key));
}

/** Whether a job of the automation has not ended yet. */
export async function hasOpenJob(db: JobsDb, automationId: string): Promise<boolean> {
  const { rows } = await sql`select 1 from jobs where automation_id = ${automationId} and end_time is null limit 1`.execute(db);
  return rows.length > 0;
}

export async function watchedDirectories(db: JobsDb): Promise<{ id: string; path: string }[]> {
  const { rows } = await sql<{ id: string; path: string }>`
    select id, spec->>'path' as path from automation_triggers where kind = 'directory' and next_poll is not null`.execute(db);
  return rows;
}
