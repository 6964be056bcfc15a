// SubmitJob: validation, cluster resolution, then one transaction for the job, its tasks, their
// dependency edges, the outbox rows of the tasks that can start right away and the reservation of
// the team's queued-task quota.
import type { TaskDefaults, TaskSubmission } from "@corral/proto";
import { InvalidArgumentError } from "@corral/server-kit";
import { v7 as uuidv7 } from "uuid";
import type { EnvelopeRow, JobRow } from "../store/database.js";
import type { ClusterResolver, JobsStore } from "./ports.js";
import { QUEUED } from "./states.js";
import { clusterOverrides, newTaskEnvelopes, planTasks, validateSubmissions } from "./task-plan.js";
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
}

export interface SubmitJobResult {
  job: JobRow;
  created: boolean;
  /** Tasks to hand to the broker after commit (their outbox rows are written). */
  ready: EnvelopeRow[];
}

export async function submitJob(
  store: JobsStore,
  clusters: ClusterResolver,
  input: SubmitJobInput,
  options: {
    maxInputBytes: number;
    /** The team's quota of open (queued + running) tasks. */
    maxOpenTasks: number;
    now?: () => Date;
  },
): Promise<SubmitJobResult> {
  if (input.name.trim() === "") throw new InvalidArgumentError("name", "must not be empty");
  if (input.tasks.length === 0) throw new InvalidArgumentError("tasks", "a job needs at least one task");
  validateSubmissions(input.tasks, "tasks", options.maxInputBytes);
  const key = input.idempotencyKey ? input.idempotencyKey : null;
  if (key !== null) {
    const existing = await store.jobs.findJobByIdempotencyKey(input.teamId, key);
    if (existing) return { job: existing, created: false, ready: [] };
  }
  const slugs = [...new Set([input.clusterSlug, ...clusterOverrides(input.tasks)])];
  const resolved = await clusters.resolve(input.teamId, slugs);
  const jobCluster = resolved.get(input.clusterSlug);
  if (!jobCluster) throw new Error(`cluster resolver returned no cluster for ${JSON.stringify(input.clusterSlug)}`);

  const jobId = uuidv7();
  const defaults = taskDefaultsJson(input.taskDefaults);
  const now = options.now?.() ?? new Date();
  const plan = planTasks(input.tasks, { jobId, parentId: null, defaultCluster: jobCluster, clusters: resolved, state: QUEUED, defaults, now });
  const n = plan.tasks.length;
  // An early answer from the current count; the reservation below is what admits.
  const before = (await store.usage.readOpenTasks([input.teamId])).get(input.teamId) ?? 0;
  if (before + n > options.maxOpenTasks) throw quotaExceededError(options.maxOpenTasks, before, n);
  const job = await store.transaction(async (tx) => {
    // A small submission is one statement; a large one continues in chunks (see INSERT_CHUNK).
    const head = plan.tasks.slice(0, INSERT_CHUNK);
    const headIds = new Set(head.map((t) => t.id));
    const inserted = await tx.jobs.insertSubmission(
      {
        id: jobId,
        team_id: input.teamId,
        name: input.name,
        cluster_id: jobCluster.id,
        cluster_slug: jobCluster.slug,
        idempotency_key: key,
        queued: n,
        total: n,
        task_defaults: defaults === null ? null : JSON.stringify(defaults),
      },
      head,
      plan.edges.filter((e) => headIds.has(e.task_id)),
    );
    if (!inserted) return undefined;
    if (n > head.length) {
      await yieldToEventLoop();
      await tx.tasks.insertSubmittedTasks(plan.tasks.slice(head.length), plan.edges.filter((e) => !headIds.has(e.task_id)));
    }
    // Reserved last, so the team's row is locked only for the commit: concurrent submissions of
    // the team admit exactly what fits, and a failure rolls the reservation back with the rest.
    if (!(await tx.usage.reserveOpenTasks(input.teamId, n, options.maxOpenTasks))) {
      const open = (await tx.usage.readOpenTasks([input.teamId])).get(input.teamId) ?? 0;
      throw quotaExceededError(options.maxOpenTasks, open, n);
    }
    return inserted;
  });
  if (job) return { job, created: true, ready: sortById(newTaskEnvelopes(job, plan.tasks).filter((e) => isDue(e.not_before, now))) };
  // A submission with the same key won: answer with that job.
  const existing = key === null ? undefined : await store.jobs.findJobByIdempotencyKey(input.teamId, key);
  if (!existing) throw new Error(`job ${jobId} was not inserted and no job has its idempotency key`);
  return { job: existing, created: false, ready: [] };
}

const sortById = (rows: EnvelopeRow[]) => rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
