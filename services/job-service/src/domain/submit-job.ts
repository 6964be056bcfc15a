// SubmitJob: validation, cluster resolution, then one transaction for the job, its tasks, their
// dependency edges, the outbox rows of the tasks that can start right away and the reservation of
// the team's queued-task quota (for a small job without an idempotency key, one statement).
import { createHash } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import { SubmitJobRequestSchema, type TaskDefaults, type TaskSubmission } from "@corral/proto";
import { AlreadyExistsError, InvalidArgumentError, type TraceParent } from "@corral/server-kit";
import { v7 as uuidv7 } from "uuid";
import type { EnvelopeRow, JobRow, NewJob } from "../store/database.js";
import type { ClusterResolver, JobsStore, TeamUsageStore } from "./ports.js";
import { QUEUED } from "./states.js";
import { clusterOverrides, newTaskEnvelopes, planTasks, validateSubmissions, type PlannedTasks } from "./task-plan.js";
import { isDue, taskDefaultsJson } from "./scheduling.js";
import { quotaExceededError } from "./team-quota.js";
import { INSERT_CHUNK, yieldToEventLoop } from "./write-chunks.js";

export interface SubmitJobInput {
  teamId: string;
  name: string;
  /** Empty: the team's default cluster. */
  clusterSlug: string;
  tasks: TaskSubmission[];
  idempotencyKey?: string;
  /** Timeouts and backoff for the job's tasks that set none. */
  taskDefaults?: TaskDefaults;
  /** The trace the job continues (the caller's span: the root tasks' parent); none: a new trace. */
  trace?: TraceParent;
}

export interface SubmitJobResult {
  job: JobRow;
  created: boolean;
  /** Tasks to hand to the broker after commit (their outbox rows are written). */
  ready: EnvelopeRow[];
}

export interface SubmitJobLimits {
  maxInputBytes: number;
  /** The team's quota of open (queued + running) tasks. */
  maxOpenTasks: number;
  /** The clock of delayed starts and deadlines (tests inject one). */
  now?: () => Date;
}

/** A submission checked, its clusters resolved and its rows planned: ready to write in a transaction. */
export interface PlannedSubmission {
  input: SubmitJobInput;
  job: NewJob;
  plan: PlannedTasks;
  /** When it was planned: the start of its tasks' delays and deadlines. */
  now: Date;
}

function checkSubmission(input: SubmitJobInput, options: SubmitJobLimits): void {
  if (input.name.trim() === "") throw new InvalidArgumentError("name", "must not be empty");
  if (input.tasks.length === 0) throw new InvalidArgumentError("tasks", "a job needs at least one task");
  validateSubmissions(input.tasks, "tasks", options.maxInputBytes);
}

/** Validation and cluster resolution (a call to the registry), outside any transaction. */
export async function planSubmission(
  clusters: ClusterResolver,
  input: SubmitJobInput,
  options: SubmitJobLimits,
  automationId: string | null = null,
): Promise<PlannedSubmission> {
  checkSubmission(input, options);
  const slugs = [...new Set([input.clusterSlug, ...clusterOverrides(input.tasks)])];
  const resolved = await clusters.resolve(input.teamId, slugs);
  const jobCluster = resolved.get(input.clusterSlug);
  if (!jobCluster) throw new Error(`cluster resolver returned no cluster for ${JSON.stringify(input.clusterSlug)}`);
  const jobId = uuidv7();
  const defaults = taskDefaultsJson(input.taskDefaults);
  const now = options.now?.() ?? new Date();
  const plan = planTasks(input.tasks, { jobId, parentId: null, defaultCluster: jobCluster, clusters: resolved, state: QUEUED, defaults, now });
  const n = plan.tasks.length;
  const job: NewJob = {
    id: jobId,
    team_id: input.teamId,
    name: input.name,
    cluster_id: jobCluster.id,
    cluster_slug: jobCluster.slug,
    idempotency_key: input.idempotencyKey ? input.idempotencyKey : null,
    queued: n,
    total: n,
    automation_id: automationId,
    task_defaults: defaults === null ? null : JSON.stringify(defaults),
    // A new trace's id is the job id's 128 bits: unique, and the job can be found from it.
    trace_id: input.trace?.traceId ?? jobId.replace(/-/g, ""),
    trace_parent_span_id: input.trace?.spanId ?? null,
    trace_flags: input.trace?.flags ?? 1,
  };
  return { input, job, plan, now };
}

/**
 * Writes a planned submission inside the caller's transaction `tx`: the job, its tasks, their
 * edges and outbox rows, and the reservation of the team's open-task quota (throws
 * RESOURCE_EXHAUSTED when it does not fit, which rolls back the caller's transaction). Returns
 * undefined when the team already has a job with the idempotency key (nothing written).
 */
export async function writeSubmission(tx: JobsStore, planned: PlannedSubmission, maxOpenTasks: number): Promise<JobRow | undefined> {
  const { job, plan } = planned;
  const n = plan.tasks.length;
  // A small submission is one statement; a large one continues in chunks (see INSERT_CHUNK).
  const head = plan.tasks.slice(0, INSERT_CHUNK);
  const headIds = new Set(head.map((t) => t.id));
  const inserted = await tx.jobs.insertSubmission(job, head, plan.edges.filter((e) => headIds.has(e.task_id)));
  if (!inserted) return undefined;
  if (n > head.length) {
    await yieldToEventLoop();
    await tx.tasks.insertSubmittedTasks(plan.tasks.slice(head.length), plan.edges.filter((e) => !headIds.has(e.task_id)));
  }
  // Reserved last, so the team's row is locked only for the commit: concurrent submissions of
  // the team admit exactly what fits, and a failure rolls the reservation back with the rest.
  if (!(await tx.usage.reserveOpenTasks(job.team_id, n, maxOpenTasks))) throw await quotaRefusal(tx.usage, job.team_id, maxOpenTasks, n);
  return inserted;
}

/** The refusal of `n` more tasks for a team whose reservation did not fit, naming its open tasks now. */
async function quotaRefusal(usage: TeamUsageStore, teamId: string, maxOpenTasks: number, n: number): Promise<Error> {
  const open = (await usage.readOpenTasks([teamId])).get(teamId) ?? 0;
  return quotaExceededError(maxOpenTasks, open, n);
}

/** The envelopes to hand to the broker after the submission committed (those due now), in id order. */
export const readyOfSubmission = (job: JobRow, planned: PlannedSubmission): EnvelopeRow[] =>
  sortById(newTaskEnvelopes(job, planned.plan.tasks).filter((e) => isDue(e.not_before, planned.now)));

export async function submitJob(
  store: JobsStore,
  clusters: ClusterResolver,
  input: SubmitJobInput,
  options: SubmitJobLimits,
): Promise<SubmitJobResult> {
  checkSubmission(input, options);
  const key = input.idempotencyKey ? input.idempotencyKey : null;
  const digest = key === null ? "" : submissionDigest(input);
  if (key !== null) {
    const existing = await store.jobs.findJobByIdempotencyKey(input.teamId, key);
    if (existing) return replayed(store, input.teamId, key, digest, existing);
  }
  const planned = await planSubmission(clusters, input, options);
  const n = planned.plan.tasks.length;
  if (key === null && n <= INSERT_CHUNK) {
    // The common submission is one statement on its own (its own commit): the reservation of its
    // open tasks first, then the job, tasks, edges and outbox rows, or nothing when it does not fit.
    const job = await store.jobs.insertSubmission(planned.job, planned.plan.tasks, planned.plan.edges, options.maxOpenTasks);
    if (!job) throw await quotaRefusal(store.usage, input.teamId, options.maxOpenTasks, n);
    return { job, created: true, ready: readyOfSubmission(job, planned) };
  }
  // An early answer from the current count; the reservation below is what admits.
  const before = (await store.usage.readOpenTasks([input.teamId])).get(input.teamId) ?? 0;
  if (before + n > options.maxOpenTasks) throw quotaExceededError(options.maxOpenTasks, before, n);
  const job = await store.transaction(async (tx) => {
    const written = await writeSubmission(tx, planned, options.maxOpenTasks);
    if (written && key !== null) await tx.jobs.saveSubmissionDigest(input.teamId, key, digest);
    return written;
  });
  if (job) return { job, created: true, ready: readyOfSubmission(job, planned) };
  // A submission with the same key won: answer with that job.
  const existing = key === null ? undefined : await store.jobs.findJobByIdempotencyKey(input.teamId, key);
  if (!existing || key === null) throw new Error(`job ${planned.job.id} was not inserted and no job has its idempotency key`);
  return replayed(store, input.teamId, key, digest, existing);
}

/**
 * The answer to a submission whose idempotency key has a job already: that job when the request
 * is the same (a retry), ALREADY_EXISTS when it differs (a key reused by mistake must not pass
 * for a submission of the new request).
 */
async function replayed(store: JobsStore, teamId: string, key: string, digest: string, existing: JobRow): Promise<SubmitJobResult> {
  const first = await store.jobs.findSubmissionDigest(teamId, key);
  if (first !== undefined && first !== digest) {
    throw new AlreadyExistsError(
      `idempotency key ${JSON.stringify(key)} was used for job ${existing.id} with a different request (name, cluster or tasks): use a new key`,
    );
  }
  return { job: existing, created: false, ready: [] };
}

/** A digest of what a submission asks for: its name, cluster and tasks (inputs included). */
export function submissionDigest(input: SubmitJobInput): string {
  const request = create(SubmitJobRequestSchema, { name: input.name, clusterSlug: input.clusterSlug, tasks: input.tasks });
  return createHash("sha256").update(toBinary(SubmitJobRequestSchema, request)).digest("hex");
}

const sortById = (rows: EnvelopeRow[]) => rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
