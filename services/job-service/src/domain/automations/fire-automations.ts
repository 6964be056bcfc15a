// Fires: each due automation (cron) or due storage trigger is handled in its own transaction that
// locks its row (SKIP LOCKED: another replica takes the next one), claims each fire's unique row
// and writes the fire's job in that same transaction, so a fire time or an object submits exactly
// one job however many replicas run and however often they restart.
import { create } from "@bufbuild/protobuf";
import { OverlapPolicy, TaskIdentifierSchema, TaskSubmissionSchema } from "@corral/proto";
import { DomainError, NotFoundError } from "@corral/server-kit";
import type { AutomationRow, EnvelopeRow } from "../../store/database.js";
import type { ClusterResolver, FireClaim, JobsStore, StorageLister, StorageObject } from "../ports.js";
import { planSubmission, readyOfSubmission, writeSubmission, type SubmitJobLimits } from "../submit-job.js";
import { cronSchedules } from "./automation-commands.js";
import { decideDueFires, fireTimesBetween, nextFireTimes } from "./cron-schedule.js";
import { cronFireInput, storageFireInput } from "./fire-input.js";

export interface FireContext {
  store: JobsStore;
  clusters: ClusterResolver;
  limits: SubmitJobLimits;
  lister: StorageLister;
  /** A fire time older than this when first seen was missed (default 60 s). */
  misfireGraceMs: number;
  /** How often a storage trigger lists again without a watch event. */
  storagePollMs: number;
}

/** What one transaction fired: jobs to enqueue after commit. */
export interface Fired {
  automationId: string;
  jobs: number;
  skipped: number;
  ready: EnvelopeRow[];
}

/** Most fire times one automation handles in one transaction (a schedule every second, caught up). */
const MAX_FIRES_PER_ROUND = 1000;

/** Handles the first due automation at `now`; undefined when none is due (or all are held elsewhere). */
export async function fireDueAutomation(ctx: FireContext, now: Date): Promise<Fired | undefined> {
  return ctx.store.transaction(async (tx) => {
    const [a] = await tx.automations.lockDueAutomations(now, 1);
    if (!a) return undefined;
    const triggers = (await tx.automations.triggersOf([a.id])).filter((t) => t.spec.kind === "cron");
    const fired: Fired = { automationId: a.id, jobs: 0, skipped: 0, ready: [] };
    const byTime = new Map<number, string>();
    for (const t of triggers) {
      for (const time of fireTimesBetween(cronSchedules([t]), a.cron_cursor, now, MAX_FIRES_PER_ROUND)) {
        if (!byTime.has(time.getTime())) byTime.set(time.getTime(), t.id);
      }
    }
    const due = [...byTime.keys()].sort((x, y) => x - y).map((ms) => new Date(ms));
    const decision = decideDueFires(due, now, a.catch_up, ctx.misfireGraceMs);
    if (decision.skipped) {
      const { time, missed } = decision.skipped;
      const claimed = await tx.automations.claimFire(cronClaim(a, byTime.get(time.getTime())!, time, `missed: ${missed} fire time(s) passed while no job-service ran`));
      if (claimed) fired.skipped += 1;
    }
    for (const time of decision.run) {
      await fireOnce(tx, ctx, a, cronClaim(a, byTime.get(time.getTime())!, time, ""), cronFireInput(a.input, time), fired);
    }
    const next = nextFireTimes(cronSchedules(triggers), now, 1)[0] ?? null;
    await tx.automations.updateAutomation(a.id, { cron_cursor: now, next_fire: next }, a.update_time);
    return fired;
  });
}

const cronClaim = (a: AutomationRow, triggerId: string, time: Date, skippedReason: string): FireClaim => ({
  automationId: a.id,
  fireKey: time.toISOString(),
  triggerId,
  fireTime: time,
  object: "",
  skippedReason,
});

/**
 * Lists the first due storage trigger (or `onlyId`, on a watch event) and fires each object it has
 * not fired before; undefined when none is due or it is held by another replica.
 */
export async function pollDueTrigger(ctx: FireContext, now: Date, onlyId?: string, signal?: AbortSignal): Promise<Fired | undefined> {
  return ctx.store.transaction(async (tx) => {
    const [t] = await tx.automations.lockDueTriggers(now, 1, onlyId);
    if (!t) return undefined;
    const a = await tx.automations.findAutomationById(t.automation_id);
    const fired: Fired = { automationId: t.automation_id, jobs: 0, skipped: 0, ready: [] };
    if (!a || a.paused) return fired;
    const { objects, cursor } = await ctx.lister.list(t.spec, t.cursor, t.since, now, signal);
    const keyOf = (o: StorageObject) => `${o.location}#${o.version}`;
    const seen = await tx.automations.seenFireKeys(a.id, objects.map(keyOf));
    for (const o of objects) {
      if (seen.has(keyOf(o))) continue;
      const claim: FireClaim = { automationId: a.id, fireKey: keyOf(o), triggerId: t.id, fireTime: o.lastModified, object: o.location, skippedReason: "" };
      await fireOnce(tx, ctx, a, claim, storageFireInput(a.input, o), fired);
    }
    await tx.automations.advanceTrigger(t.id, cursor, new Date(now.getTime() + ctx.storagePollMs));
    return fired;
  });
}

/** One fire inside the caller's transaction: claim its row, then submit its job or record why not. */
async function fireOnce(tx: JobsStore, ctx: FireContext, a: AutomationRow, claim: FireClaim, input: Uint8Array, fired: Fired): Promise<void> {
  const reason = await skipReason(tx, ctx, a);
  if (!(await tx.automations.claimFire({ ...claim, skippedReason: reason }))) return;
  if (reason !== "") {
    fired.skipped += 1;
    return;
  }
  const submission = create(TaskSubmissionSchema, {
    identifier: create(TaskIdentifierSchema, { name: a.identifier_name, version: a.identifier_version }),
    input,
    display: a.display,
    maxRetries: a.max_retries,
  });
  let planned;
  try {
    planned = await planSubmission(ctx.clusters, { teamId: a.team_id, name: a.name, clusterSlug: a.cluster_slug, tasks: [submission] }, ctx.limits, a.id);
  } catch (err) {
    // The cluster was deleted or the input outgrew a limit since the automation was saved.
    if (!(err instanceof DomainError)) throw err;
    await tx.automations.setFireSkipped(a.id, claim.fireKey, err instanceof NotFoundError ? `cluster ${JSON.stringify(a.cluster_slug)} not found` : err.message);
    fired.skipped += 1;
    return;
  }
  const job = await writeSubmission(tx, planned, ctx.limits.maxOpenTasks);
  if (!job) throw new Error(`automation ${a.id}: job ${planned.job.id} was not written`);
  await tx.automations.setFireJob(a.id, claim.fireKey, job.id);
  fired.jobs += 1;
  fired.ready.push(...readyOfSubmission(job, planned));
}

async function skipReason(tx: JobsStore, ctx: FireContext, a: AutomationRow): Promise<string> {
  if (a.overlap === OverlapPolicy.SKIP && (await tx.automations.hasOpenJob(a.id))) return "overlap: the previous job has not ended";
  const open = (await tx.usage.readOpenTasks([a.team_id])).get(a.team_id) ?? 0;
  if (open + 1 > ctx.limits.maxOpenTasks) return `quota: the team has ${open} open tasks, the limit is ${ctx.limits.maxOpenTasks}`;
  return "";
}

