// Applies a broker's batch of task results in one transaction: each result decided by the rules of
// result-decision.ts, then the batch's effects written with a handful of set-based statements
// (task rows, subtasks, failed optional branches, halted jobs, released dependants and parents,
// outbox rows, job counters, the team's open tasks), whatever the number of results.
import { create } from "@bufbuild/protobuf";
import { ResultOutcomeSchema, ResultStatus, type DispatchAck, type ResultOutcome, type TaskEnvelope, type TaskResult, type TaskSubmission } from "@corral/proto";
import { UnavailableError } from "@corral/server-kit";
import type { EnvelopeRow, JobRow, NewTaskOutputRow, TaskStateRow } from "../store/database.js";
import { toEnvelope } from "./convert.js";
import type { ClusterResolver, JobsStore } from "./ports.js";
import {
  admitSubtasks,
  decideResult,
  type AttemptOutput,
  type EndedAttempt,
  failedState,
  isCanceledForRunner,
  isTaskChanged,
  openCount,
  refuseSubtasks,
  weighFailure,
} from "./result-decision.js";
import { COMPUTED, FAILED_OPTIONAL, JobDeltas, QUEUED, RUNNING, SKIPPED, CANCELED } from "./states.js";
import { isDue } from "./scheduling.js";
import { unstorableResults } from "./storable-text.js";
import { checkSubtasks, type CheckedSubtasks } from "./subtask-check.js";
import { newTaskEnvelopes, planTasks, type NewTask, type TaskEdge } from "./task-plan.js";
import { openTaskDeltas } from "./team-quota.js";
import { settleEndedAttempts, type EndedAttemptOfTask } from "./traces/ended-attempts.js";

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
  /** Attempts the batch ended, as their spans record them. */
  ended: EndedAttemptOfTask[];
  /** Tasks the batch skipped (a failed optional branch) or canceled (a halted job) without a result. */
  stopped: string[];
}

export interface ApplyResultsOptions {
  maxInputBytes: number;
  /** Each team's quota of open (queued + running) tasks, which subtasks count against. */
  maxOpenTasks: number;
  /** The largest output a task may return (CORRAL_MAX_OUTPUT_BYTES); unset: no limit. */
  maxOutputBytes?: number;
  now?: () => Date;
  /** Draws retry jitter (default Math.random). */
  random?: () => number;
}

export async function applyResults(
  store: JobsStore,
  resolver: ClusterResolver,
  input: ApplyResultsInput,
  options: ApplyResultsOptions,
): Promise<ApplyResultsOutput> {
  const now = options.now ?? (() => new Date());
  // Before any statement: one result Postgres would refuse must not fail the others with it.
  const unstorable = unstorableResults(input.results);
  // Cluster lookups are remote calls: do them before taking any lock.
  const checked = await checkSubtasks(store, resolver, input.results, options.maxInputBytes, unstorable);
  const out = await store.transaction((tx) => applyBatch(tx, input.results, checked, now(), options.maxOpenTasks, options.maxOutputBytes, options.random));
  // Acks are idempotent and independent of the results: outside the job locks, so they never
  // lengthen the critical section. (An id Postgres cannot hold names no task: dropped.)
  const acks = (input.dispatched ?? []).filter((a) => !a.taskId.includes("\0"));
  if (acks.length > 0) await store.outbox.delete(acks.map((a) => ({ taskId: a.taskId, attempt: a.attempt })));
  return out;
}

/** What one batch's transaction has decided so far; each step below reads and extends it. */
interface Batch {
  tx: JobsStore;
  now: Date;
  random?: () => number;
  maxOpenTasks: number;
  jobs: Map<string, JobRow>;
  /** Tasks as loaded, and as the batch leaves them. */
  before: Map<string, TaskStateRow>;
  after: Map<string, TaskStateRow>;
  deltas: JobDeltas;
  /** COMPUTED without subtasks or FAILED_OPTIONAL: they release their dependants and parents. */
  done: Set<string>;
  /** Non-optional tasks out of retries. */
  failed: Set<string>;
  /** Tasks that may have become ready. */
  candidates: Set<string>;
  subtasks: { parentId: string; subs: TaskSubmission[]; outcome: ResultOutcome }[];
  outcomes: ResultOutcome[];
  /** Tasks this batch skipped (a failed optional branch) or canceled (a halted job). */
  stopped: Set<string>;
  maxOutputBytes: number | undefined;
  /** Outputs of completed attempts, written before dependants are released (their envelopes carry them). */
  outputs: NewTaskOutputRow[];
  /** Outputs of failed attempts: kept whatever the task does next (retries, fails, is canceled). */
  failedOutputs: NewTaskOutputRow[];
  /** Attempts the results ended, by task (a batch may end one attempt and see the next one start). */
  ended: { taskId: string; attempt: EndedAttempt }[];
}

async function applyBatch(
  tx: JobsStore,
  results: TaskResult[],
  checked: CheckedSubtasks,
  now: Date,
  maxOpenTasks: number,
  maxOutputBytes: number | undefined,
  random: (() => number) | undefined,
) {
  const batch = await loadBatch(tx, results, now, maxOpenTasks, maxOutputBytes);
  batch.random = random;
  decideAll(batch, results, checked);
  if (batch.subtasks.length > 0) await admitBatchSubtasks(batch);
  const { branchRoots, failedJobs } = await weighFailures(batch);
  await writeTasks(batch);
  await writeOutputs(batch);
  const newReady = await insertSubtasks(batch, checked);
  const revocations = branchRoots.size > 0 ? await skipFailedBranches(batch, branchRoots) : [];
  await cancelHaltedJobs(batch, failedJobs);
  await releaseDone(batch);
  const ready = await fillOutbox(batch, newReady);
  await settleCounters(batch);
  const ended = settleEndedAttempts(batch.ended, batch.after, batch.jobs);
  await tx.spans.insertSpans(ended.filter((e) => e.superseded).map((e) => e.row));
  for (const o of batch.outcomes) {
    const w = batch.after.get(o.taskId);
    if (w) o.canceled = isCanceledForRunner(w, batch.jobs.get(w.job_id)?.canceled ?? false, batch.stopped.has(w.id));
  }
  return { outcomes: batch.outcomes, ready, revocations, ended, stopped: [...batch.stopped] };
}

async function loadBatch(
  tx: JobsStore,
  results: TaskResult[],
  now: Date,
  maxOpenTasks: number,
  maxOutputBytes: number | undefined,
): Promise<Batch> {
  // An id holding a NUL names no task (and Postgres would refuse the whole statement for it).
  const taskIds = [...new Set(results.map((r) => r.taskId).filter((id) => !id.includes("\0")))];
  // Lock the jobs first, in id order: every writer of a job does, so batches touching the same job
  // apply one after the other and read each other's effects (no lost update, no deadlock).
  const jobs = new Map((await tx.jobs.lockJobsOfTasks(taskIds)).map((j) => [j.id, j]));
  const loaded = await tx.tasks.loadTasks(taskIds);
  return {
    tx,
    now,
    maxOpenTasks,
    jobs,
    before: new Map(loaded.map((t) => [t.id, t])),
    after: new Map(loaded.map((t) => [t.id, t])),
    deltas: new JobDeltas(),
    done: new Set(),
    failed: new Set(),
    candidates: new Set(),
    subtasks: [],
    outcomes: [],
    stopped: new Set(),
    maxOutputBytes,
    outputs: [],
    failedOutputs: [],
    ended: [],
  };
}

/** Each result in order against its task as the results before it left it. */
function decideAll(batch: Batch, results: TaskResult[], checked: CheckedSubtasks): void {
  results.forEach((r, index) => {
    const current = batch.after.get(r.taskId);
    const d = decideResult(current, r, {
      now: batch.now,
      random: batch.random,
      unstorable: checked.unstorable.get(index),
      invalidSubtasks: checked.invalid.get(index),
      maxOutputBytes: batch.maxOutputBytes,
    });
    const outcome = create(ResultOutcomeSchema, { taskId: r.taskId, attempt: r.attempt, status: d.status, reason: d.reason });
    batch.outcomes.push(outcome);
    if (!d.task) return;
    batch.after.set(d.task.id, d.task);
    for (const run of d.runs) batch.deltas.ran(d.task.job_id, run.start, run.stop);
    if (d.requeued) batch.candidates.add(d.task.id);
    if (d.done) batch.done.add(d.task.id);
    if (d.failed) batch.failed.add(d.task.id);
    if (d.ended) batch.ended.push({ taskId: d.task.id, attempt: d.ended });
    if (d.output) batch.outputs.push(outputRow(d.task.id, r.attempt, d.output));
    if (d.failedOutput) batch.failedOutputs.push(outputRow(d.task.id, r.attempt, d.failedOutput));
    if (d.subtasks.length > 0) batch.subtasks.push({ parentId: d.task.id, subs: d.subtasks, outcome });
  });
}

/**
 * Subtasks count against their team's quota of open tasks, with what this batch already changed:
 * a result whose subtasks do not fit fails its task instead of queueing beyond the limit. The
 * count is read without a lock and re-checked when it is written (settleCounters).
 */
async function admitBatchSubtasks(batch: Batch): Promise<void> {
  const teamOf = (id: string) => batch.jobs.get(batch.after.get(id)!.job_id)?.team_id ?? "";
  const open = await batch.tx.usage.readOpenTasks([...new Set(batch.subtasks.map((b) => teamOf(b.parentId)))]);
  const change = new Map<string, number>();
  for (const w of batch.after.values()) {
    const n = openCount(w.state) - openCount(batch.before.get(w.id)!.state);
    if (n !== 0) change.set(teamOf(w.id), (change.get(teamOf(w.id)) ?? 0) + n);
  }
  const requests = batch.subtasks.map((b) => ({ parentId: b.parentId, teamId: teamOf(b.parentId), count: b.subs.length }));
  const { refused } = admitSubtasks(requests, open, change, batch.maxOpenTasks);
  for (const b of batch.subtasks) {
    const why = refused.get(b.parentId);
    if (why === undefined) continue;
    const r = refuseSubtasks(batch.after.get(b.parentId)!, why);
    batch.after.set(b.parentId, r.task);
    if (r.done) batch.done.add(b.parentId);
    if (r.failed) batch.failed.add(b.parentId);
    b.outcome.status = ResultStatus.INVALID;
    b.outcome.reason = why;
  }
  batch.subtasks = batch.subtasks.filter((b) => !refused.has(b.parentId));
}

/** A failure out of retries under an optional task fails that branch, not the job. */
async function weighFailures(batch: Batch): Promise<{ branchRoots: Set<string>; failedJobs: Set<string> }> {
  const branchRoots = new Set<string>();
  const failedJobs = new Set<string>();
  const ancestors = await batch.tx.tasks.nearestOptionalAncestors([...batch.failed]);
  for (const id of batch.failed) {
    const w = batch.after.get(id)!;
    const verdict = weighFailure(ancestors.get(id), batch.jobs.get(w.job_id)?.canceled ?? false);
    batch.after.set(id, { ...w, state: failedState(verdict) });
    if (verdict.kind === "branch") branchRoots.add(verdict.root);
    else if (verdict.kind === "job") failedJobs.add(w.job_id);
  }
  return { branchRoots, failedJobs };
}

/** Writes the changed task rows in one statement and counts their moves between states. */
async function writeTasks(batch: Batch): Promise<void> {
  const changed: TaskStateRow[] = [];
  const ownsLive: boolean[] = [];
  for (const w of batch.after.values()) {
    const before = batch.before.get(w.id)!;
    if (isTaskChanged(before, w)) {
      changed.push(w);
      ownsLive.push(w.progress !== before.progress || w.display !== before.display);
      batch.deltas.move(w.job_id, before.state, w.state);
    }
  }
  await batch.tx.tasks.updateTasks(changed, ownsLive);
}

function outputRow(taskId: string, attempt: number, output: AttemptOutput): NewTaskOutputRow {
  return { task_id: taskId, attempt, encoding: output.encoding, data: Buffer.from(output.data) };
}

/**
 * Outputs of the batch's ended attempts. A completed attempt keeps its output only if it ends
 * computed (a parent whose subtasks the quota refused failed after all); a failed one keeps its own.
 */
async function writeOutputs(batch: Batch): Promise<void> {
  const computed = batch.outputs.filter((o) => batch.after.get(o.task_id)?.state === COMPUTED);
  await batch.tx.tasks.insertOutputs([...computed, ...batch.failedOutputs]);
}

/** Subtasks queue now that their parent is COMPUTED; they inherit its cluster unless they name one. */
async function insertSubtasks(batch: Batch, checked: CheckedSubtasks): Promise<EnvelopeRow[]> {
  const newTasks: NewTask[] = [];
  const newEdges: TaskEdge[] = [];
  /** New subtasks with nothing to wait for, as envelopes built from the plan. */
  const newReady: EnvelopeRow[] = [];
  for (const b of batch.subtasks) {
    const parent = batch.after.get(b.parentId)!;
    const plan = planTasks(b.subs, {
      jobId: parent.job_id,
      parentId: parent.id,
      defaultCluster: { id: parent.cluster_id, slug: parent.cluster_slug },
      clusters: checked.clusters.get(checked.teams.get(parent.id) ?? "") ?? new Map(),
      state: QUEUED,
      defaults: batch.jobs.get(parent.job_id)?.task_defaults ?? null,
      now: batch.now,
    });
    newTasks.push(...plan.tasks);
    newEdges.push(...plan.edges);
    newReady.push(...newTaskEnvelopes(batch.jobs.get(parent.job_id)!, plan.tasks));
    batch.deltas.move(parent.job_id, null, QUEUED, plan.tasks.length);
  }
  await batch.tx.tasks.insertTasks(newTasks);
  await batch.tx.tasks.insertEdges(newEdges);
  return newReady;
}

/** Fails optional branches: what is left below a root is SKIPPED, its running tasks' leases revoked. */
async function skipFailedBranches(batch: Batch, branchRoots: Set<string>): Promise<Revocation[]> {
  const skip = await batch.tx.tasks.skipBranches([...branchRoots], batch.now);
  const subtree = new Set(skip.subtreeIds);
  for (const id of [...batch.done]) if (subtree.has(id)) batch.done.delete(id);
  const running = new Map<string, string[]>();
  for (const s of skip.skipped) {
    batch.stopped.add(s.id);
    batch.deltas.move(s.job_id, s.old_state, SKIPPED);
    if (s.old_state === RUNNING) running.set(s.job_id, [...(running.get(s.job_id) ?? []), s.id]);
  }
  for (const r of skip.failedRoots) {
    batch.deltas.move(r.job_id, COMPUTED, FAILED_OPTIONAL);
    if (!subtree.has(r.id)) batch.done.add(r.id);
  }
  return [...running].map(([jobId, taskIds]) => ({
    teamId: batch.jobs.get(jobId)?.team_id ?? "",
    jobId,
    taskIds,
    reason: "an optional branch failed",
  }));
}

/**
 * A failed or canceled job starts nothing more: its queued tasks (new subtasks and re-queued
 * retries included) are canceled until RetryJob.
 */
async function cancelHaltedJobs(batch: Batch, failedJobs: Set<string>): Promise<void> {
  const halted = [...batch.jobs.values()].filter((j) => j.canceled || j.failed > 0 || failedJobs.has(j.id)).map((j) => j.id);
  for (const c of await batch.tx.tasks.cancelQueuedTasks(halted, batch.now)) {
    batch.stopped.add(c.id);
    batch.deltas.move(c.job_id, QUEUED, CANCELED);
  }
}

/**
 * A task is done when it is COMPUTED (or failed optionally) and its subtree is done; done tasks
 * release their dependants and, level by level, their parents. Roots have no parent and most tasks
 * no dependants: a statement nothing needs is skipped (a task this batch did not load counts as
 * having both).
 */
async function releaseDone(batch: Batch): Promise<void> {
  let frontier = [...batch.done].map((id) => {
    const w = batch.after.get(id);
    return { id, hasParent: w?.parent_id !== null, hasDependants: w?.has_dependants ?? true };
  });
  while (frontier.length > 0) {
    const ids = frontier.filter((f) => f.hasDependants).map((f) => f.id);
    for (const d of await batch.tx.tasks.releaseDependants(ids)) {
      if (d.waiting_deps === 0 && d.state === QUEUED) batch.candidates.add(d.id);
    }
    const withParent = frontier.filter((f) => f.hasParent).map((f) => f.id);
    const next: typeof frontier = [];
    for (const p of await batch.tx.tasks.releaseParents(withParent)) {
      if (p.open_children === 0 && (p.state === COMPUTED || p.state === FAILED_OPTIONAL)) {
        next.push({ id: p.id, hasParent: p.parent_id !== null, hasDependants: p.has_dependants });
      }
    }
    frontier = next;
  }
}

/**
 * Outbox rows for what became ready. New subtasks with nothing to wait for start now, unless this
 * batch canceled or skipped them: their rows and envelopes come from the plan, without reading
 * the rows back.
 */
async function fillOutbox(batch: Batch, newReady: EnvelopeRow[]): Promise<TaskEnvelope[]> {
  const startNow = newReady.filter((e) => !batch.stopped.has(e.id));
  await batch.tx.outbox.insert(startNow.map((e) => ({ taskId: e.id, attempt: e.attempt, jobId: e.job_id, notBefore: e.not_before })));
  // A delayed start or a retry's backoff keeps its outbox row until due: the sweeper sends it then.
  const ready = [...startNow, ...(await batch.tx.outbox.addReady([...batch.candidates], batch.now))];
  return ready.filter((e) => isDue(e.not_before, batch.now)).map(toEnvelope);
}

/** The jobs' counters, then the teams' open tasks, from the batch's moves between states. */
async function settleCounters(batch: Batch): Promise<void> {
  await batch.tx.jobs.settleJobs([...batch.jobs.keys()], batch.deltas.all());
  const opened = openTaskDeltas(batch.deltas.all(), (id) => batch.jobs.get(id)?.team_id);
  const refused = await batch.tx.usage.addOpenTasks(opened, batch.maxOpenTasks);
  if (refused.length > 0) {
    // Another transaction of the team took the room read above: the broker retries the batch,
    // which then sees the new count.
    throw new UnavailableError(`the open tasks of team ${refused.join(", ")} changed while this batch applied; retry it`);
  }
}
