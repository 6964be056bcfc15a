// Applies a broker's batch of task results in one transaction: fencing by attempt, the task state
// machine, subtasks, optional branches, job failure, dependency and subtree completion, and the
// outbox rows of the tasks that became ready. A handful of set-based statements per batch.
import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  ResultOutcomeSchema,
  ResultStatus,
  type DispatchAck,
  type ResultOutcome,
  type TaskEnvelope,
  type TaskStarted,
  type TaskResult,
  type TaskSubmission,
} from "@corral/proto";
import { InvalidArgumentError, NotFoundError, UnavailableError } from "@corral/server-kit";
import type { Kysely, Transaction } from "kysely";
import type { JobsDatabase, ProgressJson } from "../store/database.js";
import { lockJobsOfTasks, settleJobs, type JobRow } from "../store/job-repository.js";
import { deleteOutbox, enqueueReady, insertOutbox, type EnvelopeRow } from "../store/outbox-repository.js";
import {
  cancelQueuedTasks,
  insertEdges,
  insertTasks,
  loadTasks,
  nearestOptionalAncestors,
  releaseDependants,
  releaseParents,
  skipBranches,
  teamsOfTasks,
  updateTasks,
  type TaskRow,
} from "../store/task-repository.js";
import { toEnvelope } from "./convert.js";
import { addOpenTasks, readOpenTasks } from "../store/team-usage-repository.js";
import type { ClusterResolver, ResolvedCluster } from "./ports.js";
import { openTaskDeltas, quotaText } from "./team-quota.js";
import {
  CANCELED,
  COMPUTED,
  FAILED,
  FAILED_OPTIONAL,
  JobDeltas,
  MAX_LEASE_EXPIRIES,
  QUEUED,
  RUNNING,
  SKIPPED,
} from "./states.js";
import { unstorableResults } from "./storable-text.js";
import { clusterOverrides, newTaskEnvelopes, planTasks, validateSubmissions, type NewTask, type TaskEdge } from "./task-plan.js";

export interface ApplyResultsInput {
  results: TaskResult[];
  /** Piggybacked acks of tasks the broker has put in its streams. */
  dispatched?: DispatchAck[];
}

export interface Revocation {
  teamId: string;
  jobId: string;
  taskIds: string[];
  reason: string;
}

export interface ApplyResultsOutput {
  outcomes: ResultOutcome[];
  /** Tasks that became ready; their outbox rows stay until the broker acknowledges them. */
  ready: TaskEnvelope[];
  /** Leases to revoke after commit (running tasks of a failed optional branch). */
  revocations: Revocation[];
}

export interface ApplyResultsOptions {
  maxInputBytes: number;
  /** Each team's quota of open (queued + running) tasks, which subtasks count against. */
  maxOpenTasks: number;
  now?: () => Date;
}

interface ResolvedSubtasks {
  /** Result index → reason the result's subtasks break a rule. */
  invalid: Map<number, string>;
  /** Result index → why the result holds text Postgres cannot store; its task fails instead. */
  unstorable: Map<number, string>;
  /** Team id → slug → cluster. */
  clusters: Map<string, Map<string, ResolvedCluster>>;
  teams: Map<string, string>;
}

export async function applyResults(
  db: Kysely<JobsDatabase>,
  resolver: ClusterResolver,
  input: ApplyResultsInput,
  options: ApplyResultsOptions,
): Promise<ApplyResultsOutput> {
  const now = options.now ?? (() => new Date());
  // Before any statement: one result Postgres would refuse must not fail the others with it.
  const unstorable = unstorableResults(input.results);
  // Cluster lookups are remote calls: do them before taking any lock.
  const resolved = await resolveSubtasks(db, resolver, input.results, options.maxInputBytes, unstorable);
  const out = await db.transaction().execute((tx) => applyInTransaction(tx, input.results, resolved, now(), options.maxOpenTasks));
  // Acks are idempotent and independent of the results: outside the job locks, so they never
  // lengthen the critical section. (An id Postgres cannot hold names no task: dropped.)
  const acks = (input.dispatched ?? []).filter((a) => !a.taskId.includes("\0"));
  if (acks.length > 0) {
    await deleteOutbox(db, acks.map((a) => ({ taskId: a.taskId, attempt: a.attempt })));
  }
  return out;
}

async function resolveSubtasks(
  db: Kysely<JobsDatabase>,
  resolver: ClusterResolver,
  results: TaskResult[],
  maxInputBytes: number,
  unstorable: Map<number, string>,
): Promise<ResolvedSubtasks> {
  const invalid = new Map<number, string>();
  const withSubtasks: { index: number; taskId: string; subs: TaskSubmission[] }[] = [];
  results.forEach((r, index) => {
    if (unstorable.has(index)) return;
    if (r.outcome.case !== "completed" || r.outcome.value.subtasks.length === 0) return;
    const subs = r.outcome.value.subtasks;
    try {
      validateSubmissions(subs, `results[${index}].completed.subtasks`, maxInputBytes);
      withSubtasks.push({ index, taskId: r.taskId, subs });
    } catch (err) {
      if (!(err instanceof InvalidArgumentError)) throw err;
      invalid.set(index, err.message);
    }
  });
  const teams = await teamsOfTasks(db, [...new Set(withSubtasks.map((w) => w.taskId))]);
  const slugsByTeam = new Map<string, Set<string>>();
  for (const w of withSubtasks) {
    const team = teams.get(w.taskId);
    if (team === undefined) continue;
    const set = slugsByTeam.get(team) ?? new Set<string>();
    for (const s of clusterOverrides(w.subs)) set.add(s);
    slugsByTeam.set(team, set);
  }
  const clusters = new Map<string, Map<string, ResolvedCluster>>();
  for (const [team, slugs] of slugsByTeam) {
    const pending = new Set(slugs);
    const map = new Map<string, ResolvedCluster>();
    // An unknown slug invalidates only the results that name it: resolve the rest without it.
    while (pending.size > 0) {
      try {
        for (const [slug, c] of await resolver.resolve(team, [...pending])) map.set(slug, c);
        break;
      } catch (err) {
        if (!(err instanceof NotFoundError) || !pending.has(err.id)) throw err;
        pending.delete(err.id);
      }
    }
    clusters.set(team, map);
  }
  for (const w of withSubtasks) {
    const map = clusters.get(teams.get(w.taskId) ?? "");
    const unknown = w.subs.findIndex((s) => s.clusterSlug !== "" && !map?.has(s.clusterSlug));
    if (unknown >= 0) {
      invalid.set(w.index, `results[${w.index}].completed.subtasks[${unknown}].cluster_slug: cluster ${JSON.stringify(w.subs[unknown]!.clusterSlug)} not found`);
    }
  }
  return { invalid, unstorable, clusters, teams };
}

async function applyInTransaction(
  tx: Transaction<JobsDatabase>,
  results: TaskResult[],
  resolved: ResolvedSubtasks,
  now: Date,
  maxOpenTasks: number,
): Promise<ApplyResultsOutput> {
  // An id holding a NUL names no task (and Postgres would refuse the whole statement for it).
  const taskIds = [...new Set(results.map((r) => r.taskId).filter((id) => !id.includes("\0")))];
  // Lock the jobs first, in id order: every writer of a job does, so batches touching the same job
  // apply one after the other and read each other's effects (no lost update, no deadlock).
  const jobs = new Map<string, JobRow>((await lockJobsOfTasks(tx, taskIds)).map((j) => [j.id, j]));
  const loaded = await loadTasks(tx, taskIds);
  const tasks = new Map<string, TaskRow>(loaded.map((t) => [t.id, { ...t }]));
  const originals = new Map<string, TaskRow>(loaded.map((t) => [t.id, t]));

  const deltas = new JobDeltas();
  const done = new Set<string>();
  const hardFailed = new Set<string>();
  const candidates = new Set<string>();
  const subtaskBatches: { parent: TaskRow; subs: TaskSubmission[]; teamId: string; outcome: ResultOutcome }[] = [];
  const outcomes: ResultOutcome[] = [];

  const requeue = (w: TaskRow) => {
    w.attempt += 1;
    w.state = QUEUED;
    w.start_time = null;
    w.runner_id = "";
    candidates.add(w.id);
  };
  const terminal = (w: TaskRow) => {
    if (w.optional) {
      w.state = FAILED_OPTIONAL;
      done.add(w.id);
    } else {
      w.state = FAILED;
      hardFailed.add(w.id);
    }
  };
  const begin = (w: TaskRow, s: TaskStarted) => {
    w.state = RUNNING;
    w.runner_id = s.runnerId;
    w.start_time = s.startTime ? timestampDate(s.startTime) : now;
    w.stop_time = null;
    deltas.ran(w.job_id, w.start_time, null);
    w.error = "";
  };
  /** An end that carries its attempt's start (never sent on its own): apply the start first. */
  const beginFolded = (w: TaskRow, s: TaskStarted | undefined) => {
    if (s && w.state === QUEUED && w.waiting_deps === 0) begin(w, s);
  };
  const endAttempt = (w: TaskRow, stop: Date, progress: ProgressJson[] | undefined) => {
    w.stop_time = stop;
    if (w.start_time) w.compute_ms += Math.max(0, stop.getTime() - w.start_time.getTime());
    deltas.ran(w.job_id, w.start_time, stop);
    // Progress is per task and only the last reported attempt counts.
    if (progress) w.progress = progress;
  };

  results.forEach((r, index) => {
    const w = tasks.get(r.taskId);
    const outcome = create(ResultOutcomeSchema, { taskId: r.taskId, attempt: r.attempt });
    outcomes.push(outcome);
    if (!w) {
      outcome.status = ResultStatus.NOT_FOUND;
      outcome.reason = "no such task";
      return;
    }
    if (r.attempt !== w.attempt) {
      outcome.status = ResultStatus.STALE;
      outcome.reason = `attempt ${r.attempt} is not the current attempt ${w.attempt}`;
      return;
    }
    // A completion may arrive without its start report (lost or in a later batch): a queued task
    // whose current attempt was dispatched counts as running for results.
    const active = w.state === RUNNING || (w.state === QUEUED && w.waiting_deps === 0);
    // A batch the broker re-sends because our answer was lost: report the result as durable again
    // instead of stale, so the runner gets its ack. (A retried failure has a new attempt by then and
    // answers stale; its re-queued task reaches the broker through the outbox.)
    if (isDuplicate(r, w)) {
      outcome.status = ResultStatus.APPLIED;
      outcome.reason = "already applied";
      return;
    }
    const unstorable = resolved.unstorable.get(index);
    if (unstorable !== undefined) {
      if (!active) {
        stale(outcome, w);
        return;
      }
      // The attempt ends failed, not retried: the same code would report the same text again.
      endAttempt(w, now, undefined);
      w.error = `the task's result could not be stored: ${unstorable}`;
      terminal(w);
      outcome.status = ResultStatus.INVALID;
      outcome.reason = w.error;
      return;
    }
    switch (r.outcome.case) {
      case "started": {
        if (w.state !== QUEUED || w.waiting_deps > 0) {
          stale(outcome, w);
          return;
        }
        begin(w, r.outcome.value);
        outcome.status = ResultStatus.APPLIED;
        return;
      }
      case "completed": {
        if (!active) {
          stale(outcome, w);
          return;
        }
        const c = r.outcome.value;
        beginFolded(w, c.started);
        const stop = c.stopTime ? timestampDate(c.stopTime) : now;
        endAttempt(w, stop, c.progress.map(progressJson));
        const invalid = resolved.invalid.get(index);
        if (invalid !== undefined) {
          w.error = invalid;
          terminal(w);
          outcome.status = ResultStatus.INVALID;
          outcome.reason = invalid;
          return;
        }
        w.state = COMPUTED;
        w.error = "";
        if (c.display !== "") w.display = c.display;
        w.subtask_count = c.subtasks.length;
        w.open_children = c.subtasks.length;
        if (c.subtasks.length > 0) {
          subtaskBatches.push({ parent: w, subs: c.subtasks, teamId: resolved.teams.get(w.id) ?? "", outcome });
        } else {
          done.add(w.id);
        }
        outcome.status = ResultStatus.APPLIED;
        return;
      }
      case "failed": {
        if (!active) {
          stale(outcome, w);
          return;
        }
        const f = r.outcome.value;
        beginFolded(w, f.started);
        endAttempt(w, f.stopTime ? timestampDate(f.stopTime) : now, f.progress.map(progressJson));
        w.error = f.error;
        if (f.display !== "") w.display = f.display;
        if (!f.unrecoverable && !f.countsAsRetry) requeue(w);
        else if (!f.unrecoverable && w.retry_count < w.max_retries) {
          w.retry_count += 1;
          requeue(w);
        } else terminal(w);
        outcome.status = ResultStatus.APPLIED;
        return;
      }
      case "expired": {
        if (!active) {
          stale(outcome, w);
          return;
        }
        endAttempt(w, now, undefined);
        w.lease_expiry_count += 1;
        if (w.lease_expiry_count > MAX_LEASE_EXPIRIES) {
          w.error = `the lease expired ${w.lease_expiry_count} times`;
          terminal(w);
        } else requeue(w);
        outcome.status = ResultStatus.APPLIED;
        return;
      }
      default:
        outcome.status = ResultStatus.INVALID;
        outcome.reason = "a result needs an outcome";
    }
  });

  // Subtasks count against their team's quota of open tasks, with what this batch already
  // changed: a result whose subtasks do not fit fails (its task, like one with invalid subtasks),
  // with the limit named, instead of queueing beyond it. The count is read without a lock and
  // re-checked when it is written (addOpenTasks below).
  if (subtaskBatches.length > 0) {
    const teamOf = (w: TaskRow) => jobs.get(w.job_id)?.team_id ?? "";
    const open = await readOpenTasks(tx, [...new Set(subtaskBatches.map((b) => teamOf(b.parent)))]);
    const isOpen = (state: number) => (state === QUEUED || state === RUNNING ? 1 : 0);
    for (const w of tasks.values()) {
      const team = teamOf(w);
      if (open.has(team)) open.set(team, open.get(team)! + isOpen(w.state) - isOpen(originals.get(w.id)!.state));
    }
    for (let i = 0; i < subtaskBatches.length; i++) {
      const b = subtaskBatches[i]!;
      const team = teamOf(b.parent);
      const current = open.get(team)!;
      if (current + b.subs.length <= maxOpenTasks) {
        open.set(team, current + b.subs.length);
        continue;
      }
      const w = b.parent;
      w.error = `its ${b.subs.length} subtasks would exceed ${quotaText(maxOpenTasks, current)}`;
      w.subtask_count = 0;
      w.open_children = 0;
      terminal(w);
      b.outcome.status = ResultStatus.INVALID;
      b.outcome.reason = w.error;
      subtaskBatches.splice(i--, 1);
    }
  }

  // A failure out of retries under an optional task fails that branch, not the job.
  const branchRoots = new Set<string>();
  const failedJobs = new Set<string>();
  const ancestors = await nearestOptionalAncestors(tx, [...hardFailed]);
  for (const id of hardFailed) {
    const w = tasks.get(id)!;
    const root = ancestors.get(id);
    if (root !== undefined) {
      w.state = FAILED_OPTIONAL;
      branchRoots.add(root);
    } else if (jobs.get(w.job_id)?.canceled) {
      // A running task of a canceled job that stops with a failure was stopped by the cancel (its
      // signal aborted): it ends CANCELED and the job stays CANCELED instead of turning FAILED.
      w.state = CANCELED;
    } else failedJobs.add(w.job_id);
  }

  const changed: TaskRow[] = [];
  for (const w of tasks.values()) {
    const original = originals.get(w.id)!;
    if (isChanged(original, w)) {
      changed.push(w);
      deltas.move(w.job_id, original.state, w.state);
    }
  }
  await updateTasks(tx, changed);

  // Subtasks queue now that their parent is COMPUTED; they inherit its cluster unless they name one.
  const newTasks: NewTask[] = [];
  const newEdges: TaskEdge[] = [];
  /** New subtasks with nothing to wait for, as envelopes built from the plan. */
  const newReady: EnvelopeRow[] = [];
  for (const b of subtaskBatches) {
    const plan = planTasks(b.subs, {
      jobId: b.parent.job_id,
      parentId: b.parent.id,
      defaultCluster: { id: b.parent.cluster_id, slug: b.parent.cluster_slug },
      clusters: resolved.clusters.get(b.teamId) ?? new Map(),
      state: QUEUED,
    });
    newTasks.push(...plan.tasks);
    newEdges.push(...plan.edges);
    newReady.push(...newTaskEnvelopes(jobs.get(b.parent.job_id)!, plan.tasks));
    deltas.move(b.parent.job_id, null, QUEUED, plan.tasks.length);
  }
  await insertTasks(tx, newTasks);
  await insertEdges(tx, newEdges);

  const revocations: Revocation[] = [];
  const skippedIds = new Set<string>();
  if (branchRoots.size > 0) {
    const skip = await skipBranches(tx, [...branchRoots], now);
    const subtree = new Set(skip.subtreeIds);
    for (const id of [...done]) if (subtree.has(id)) done.delete(id);
    const running = new Map<string, string[]>();
    for (const s of skip.skipped) {
      skippedIds.add(s.id);
      deltas.move(s.job_id, s.old_state, SKIPPED);
      if (s.old_state === RUNNING) running.set(s.job_id, [...(running.get(s.job_id) ?? []), s.id]);
    }
    for (const r of skip.failedRoots) {
      deltas.move(r.job_id, COMPUTED, FAILED_OPTIONAL);
      if (!subtree.has(r.id)) done.add(r.id);
    }
    for (const [jobId, ids] of running) {
      revocations.push({ teamId: jobs.get(jobId)?.team_id ?? "", jobId, taskIds: ids, reason: "an optional branch failed" });
    }
  }

  // A failed or canceled job starts nothing more: its queued tasks (new subtasks and re-queued
  // retries included) are canceled until RetryJob.
  const halted = [...jobs.values()].filter((j) => j.canceled || j.failed > 0 || failedJobs.has(j.id)).map((j) => j.id);
  const canceledIds = new Set<string>();
  for (const c of await cancelQueuedTasks(tx, halted)) {
    canceledIds.add(c.id);
    deltas.move(c.job_id, QUEUED, CANCELED);
  }

  // A task is done when it is COMPUTED (or failed optionally) and its subtree is done; done tasks
  // release their dependants and, level by level, their parents.
  // Roots have no parent and most tasks no dependants: a statement nothing needs is skipped (a task
  // this batch did not load counts as having both).
  let frontier = [...done].map((id) => {
    const w = tasks.get(id);
    return { id, hasParent: w?.parent_id !== null, hasDependants: w?.has_dependants ?? true };
  });
  while (frontier.length > 0) {
    const ids = frontier.filter((f) => f.hasDependants).map((f) => f.id);
    for (const d of await releaseDependants(tx, ids)) {
      if (d.waiting_deps === 0 && d.state === QUEUED) candidates.add(d.id);
    }
    const withParent = frontier.filter((f) => f.hasParent).map((f) => f.id);
    const next: typeof frontier = [];
    for (const p of await releaseParents(tx, withParent)) {
      if (p.open_children === 0 && (p.state === COMPUTED || p.state === FAILED_OPTIONAL)) {
        next.push({ id: p.id, hasParent: p.parent_id !== null, hasDependants: p.has_dependants });
      }
    }
    frontier = next;
  }

  // New subtasks with nothing to wait for start now, unless this batch canceled or skipped them:
  // their outbox rows and envelopes come from the plan, without reading the rows back.
  const startNow = newReady.filter((e) => !canceledIds.has(e.id) && !skippedIds.has(e.id));
  await insertOutbox(tx, startNow.map((e) => ({ taskId: e.id, attempt: e.attempt, jobId: e.job_id })));
  const ready = [...startNow, ...(await enqueueReady(tx, [...candidates]))].map(toEnvelope);
  await settleJobs(tx, [...jobs.keys()], deltas.all());
  const refused = await addOpenTasks(tx, openTaskDeltas(deltas.all(), (id) => jobs.get(id)?.team_id), maxOpenTasks);
  if (refused.length > 0) {
    // Another transaction of the team took the room read above: the broker retries the batch,
    // which then sees the new count.
    throw new UnavailableError(`the open tasks of team ${refused.join(", ")} changed while this batch applied; retry it`);
  }

  for (const o of outcomes) {
    const w = tasks.get(o.taskId);
    if (!w) continue;
    const job = jobs.get(w.job_id);
    o.canceled = (job?.canceled ?? false) || skippedIds.has(w.id) || canceledIds.has(w.id) || w.state === CANCELED || w.state === SKIPPED;
  }
  return { outcomes, ready, revocations };
}

function isDuplicate(r: TaskResult, w: TaskRow): boolean {
  switch (r.outcome.case) {
    case "started":
      return (
        (w.state === RUNNING || w.state === COMPUTED || w.state === FAILED || w.state === FAILED_OPTIONAL) &&
        w.runner_id === r.outcome.value.runnerId
      );
    case "completed":
      return w.state === COMPUTED;
    case "failed":
      return (w.state === FAILED || w.state === FAILED_OPTIONAL) && w.error === r.outcome.value.error;
    default:
      return false;
  }
}

function stale(outcome: ResultOutcome, w: TaskRow): void {
  outcome.status = ResultStatus.STALE;
  outcome.reason = `the task is ${stateName(w.state)}${w.state === QUEUED && w.waiting_deps > 0 ? " and waits for dependencies" : ""}`;
}

function stateName(state: number): string {
  return ["unspecified", "queued", "running", "computed", "failed", "skipped", "failed optional", "canceled"][state] ?? String(state);
}

function progressJson(p: { label: string; total: bigint; done: bigint }): ProgressJson {
  return { label: p.label, total: Number(p.total), done: Number(p.done) };
}

function isChanged(a: TaskRow, b: TaskRow): boolean {
  return (
    a.state !== b.state ||
    a.attempt !== b.attempt ||
    a.retry_count !== b.retry_count ||
    a.lease_expiry_count !== b.lease_expiry_count ||
    a.open_children !== b.open_children ||
    a.subtask_count !== b.subtask_count ||
    a.runner_id !== b.runner_id ||
    a.start_time?.getTime() !== b.start_time?.getTime() ||
    a.stop_time?.getTime() !== b.stop_time?.getTime() ||
    a.error !== b.error ||
    a.display !== b.display ||
    a.progress !== b.progress ||
    a.compute_ms !== b.compute_ms
  );
}
