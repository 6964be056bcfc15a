// The automation commands and reads behind AutomationService, scoped to the caller's team:
// create, get (with next fire times and recent fires), list, update, pause, resume, delete.
import type { CreateAutomationRequest, UpdateAutomationRequest } from "@corral/proto";
import { InvalidArgumentError, NotFoundError } from "@corral/server-kit";
import { v7 as uuidv7 } from "uuid";
import type { AutomationRow, FireRow, TriggerRow, TriggerSpec } from "../../store/database.js";
import { decodePageToken, encodePageToken } from "../page-token.js";
import type { AutomationChanges, ClusterResolver, JobsStore } from "../ports.js";
import { checkPrototype, checkTriggers, catchUpOf, overlapOf, type StoragePolicy } from "./automation-spec.js";
import { nextFireTimes, parseSchedule, type Schedule } from "./cron-schedule.js";

export interface AutomationContext {
  store: JobsStore;
  clusters: ClusterResolver;
  maxInputBytes: number;
  storage: StoragePolicy;
  now: () => Date;
}

export interface AutomationView {
  automation: AutomationRow;
  triggers: TriggerRow[];
  nextFires: Date[];
  fires: FireRow[];
}

/** The parsed schedules of an automation's cron triggers. */
export function cronSchedules(triggers: ReadonlyArray<{ spec: TriggerSpec }>): Schedule[] {
  return triggers.flatMap((t) => (t.spec.kind === "cron" ? [parseSchedule(t.spec, "cron")] : []));
}

const nextFireAfter = (specs: ReadonlyArray<{ spec: TriggerSpec }>, after: Date): Date | null =>
  nextFireTimes(cronSchedules(specs), after, 1)[0] ?? null;

async function checkCluster(ctx: AutomationContext, teamId: string, slug: string): Promise<void> {
  try {
    await ctx.clusters.resolve(teamId, [slug]);
  } catch (err) {
    if (err instanceof NotFoundError) throw new InvalidArgumentError("cluster_slug", `the team has no cluster ${JSON.stringify(slug)}`, { cause: err });
    throw err;
  }
}

export async function createAutomation(ctx: AutomationContext, teamId: string, req: CreateAutomationRequest): Promise<AutomationView> {
  if (req.name.trim() === "") throw new InvalidArgumentError("name", "must not be empty");
  const p = checkPrototype(req.prototype, "prototype", ctx.maxInputBytes);
  const specs = checkTriggers(req.triggers, "triggers", ctx.storage).map((spec) => ({ id: uuidv7(), spec }));
  await checkCluster(ctx, teamId, req.clusterSlug);
  const now = ctx.now();
  const id = uuidv7();
  await ctx.store.transaction((tx) =>
    tx.automations.insertAutomation(
      {
        id,
        team_id: teamId,
        name: req.name,
        identifier_name: p.identifierName,
        identifier_version: p.identifierVersion,
        input: p.input,
        display: p.display,
        max_retries: p.maxRetries,
        cluster_slug: req.clusterSlug,
        overlap: overlapOf(req.overlap),
        catch_up: catchUpOf(req.catchUp),
        paused: req.paused,
        next_fire: req.paused ? null : nextFireAfter(specs, now),
      },
      specs,
      now,
    ),
  );
  return getAutomation(ctx, teamId, id);
}

export async function getAutomation(ctx: AutomationContext, teamId: string, id: string, nextCount = 5, fireCount = 20): Promise<AutomationView> {
  const automation = await ctx.store.automations.findAutomation(teamId, id);
  if (!automation) throw new NotFoundError("automation", id);
  const [triggers, fires] = await Promise.all([ctx.store.automations.triggersOf([id]), ctx.store.automations.recentFires(id, fireCount)]);
  const nextFires = automation.paused ? [] : nextFireTimes(cronSchedules(triggers), maxDate(automation.cron_cursor, ctx.now()), nextCount);
  return { automation, triggers, nextFires, fires };
}

const maxDate = (a: Date, b: Date) => (a > b ? a : b);
const isIdToken = (v: Record<string, unknown>): v is { id: string } => typeof v.id === "string";

export async function listAutomations(
  ctx: AutomationContext,
  teamId: string,
  pageSize: number,
  pageToken: string,
): Promise<{ items: AutomationView[]; nextPageToken: string }> {
  const limit = pageSize === 0 ? 100 : pageSize;
  const after = decodePageToken(pageToken, isIdToken);
  const rows = await ctx.store.automations.listAutomations(teamId, after?.id, limit + 1);
  const page = rows.slice(0, limit);
  const triggers = await ctx.store.automations.triggersOf(page.map((a) => a.id));
  const items = page.map((automation) => ({ automation, triggers: triggers.filter((t) => t.automation_id === automation.id), nextFires: [], fires: [] }));
  return { items, nextPageToken: rows.length > limit ? encodePageToken({ id: page[page.length - 1]!.id }) : "" };
}

export async function updateAutomation(ctx: AutomationContext, teamId: string, req: UpdateAutomationRequest): Promise<AutomationView> {
  const changes: AutomationChanges = {};
  if (req.name !== undefined) {
    if (req.name.trim() === "") throw new InvalidArgumentError("name", "must not be empty");
    changes.name = req.name;
  }
  if (req.prototype) {
    const p = checkPrototype(req.prototype, "prototype", ctx.maxInputBytes);
    Object.assign(changes, {
      identifier_name: p.identifierName,
      identifier_version: p.identifierVersion,
      input: p.input,
      display: p.display,
      max_retries: p.maxRetries,
    });
  }
  if (req.overlap !== undefined) changes.overlap = overlapOf(req.overlap);
  if (req.catchUp !== undefined) changes.catch_up = catchUpOf(req.catchUp);
  const specs = req.replaceTriggers ? checkTriggers(req.triggers, "triggers", ctx.storage).map((spec) => ({ id: uuidv7(), spec })) : undefined;
  if (!req.replaceTriggers && req.triggers.length > 0) throw new InvalidArgumentError("replace_triggers", "must be true when triggers are given");
  if (req.clusterSlug !== undefined) {
    await checkCluster(ctx, teamId, req.clusterSlug);
    changes.cluster_slug = req.clusterSlug;
  }
  const now = ctx.now();
  await ctx.store.transaction(async (tx) => {
    const a = await tx.automations.findAutomation(teamId, req.automationId, true);
    if (!a) throw new NotFoundError("automation", req.automationId);
    if (specs) {
      await tx.automations.deleteTriggers(a.id);
      await tx.automations.insertTriggers(a.id, specs, a.paused ? null : now, now);
      // New schedules start now: they do not catch up on times before the change.
      changes.cron_cursor = now;
      changes.next_fire = a.paused ? null : nextFireAfter(specs, now);
    }
    await tx.automations.updateAutomation(a.id, changes, now);
  });
  return getAutomation(ctx, teamId, req.automationId);
}

/** Pausing stops fires; resuming starts from now (times passed while paused are not caught up). */
export async function setPaused(ctx: AutomationContext, teamId: string, id: string, paused: boolean): Promise<AutomationView> {
  const now = ctx.now();
  await ctx.store.transaction(async (tx) => {
    const a = await tx.automations.findAutomation(teamId, id, true);
    if (!a) throw new NotFoundError("automation", id);
    if (a.paused === paused) return;
    const triggers = await tx.automations.triggersOf([id]);
    await tx.automations.updateAutomation(
      id,
      paused ? { paused, next_fire: null } : { paused, cron_cursor: now, next_fire: nextFireAfter(triggers, now) },
      now,
    );
    await tx.automations.setTriggersNextPoll(id, paused ? null : now);
  });
  return getAutomation(ctx, teamId, id);
}

export async function deleteAutomation(ctx: AutomationContext, teamId: string, id: string): Promise<void> {
  if (!(await ctx.store.automations.deleteAutomation(teamId, id))) throw new NotFoundError("automation", id);
}
