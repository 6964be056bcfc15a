// SubmitJob: validation, cluster resolution, then one statement for the job, its tasks, their
// dependency edges and the outbox rows of the tasks that can start right away.
import type { TaskSubmission } from "@corral/proto";
import { InvalidArgumentError } from "@corral/server-kit";
import type { Kysely } from "kysely";
import { v7 as uuidv7 } from "uuid";
import type { JobsDatabase } from "../store/database.js";
import { findJobByIdempotencyKey, insertSubmission, type JobRow } from "../store/job-repository.js";
import type { EnvelopeRow } from "../store/outbox-repository.js";
import type { ClusterResolver } from "./ports.js";
import { QUEUED } from "./states.js";
import { clusterOverrides, newTaskEnvelopes, planTasks, validateSubmissions } from "./task-plan.js";

export interface SubmitJobInput {
  teamId: string;
  name: string;
  /** Empty: the team's default cluster. */
  clusterSlug: string;
  tasks: TaskSubmission[];
  idempotencyKey?: string;
}

export interface SubmitJobResult {
  job: JobRow;
  created: boolean;
  /** Tasks to hand to the broker after commit (their outbox rows are written). */
  ready: EnvelopeRow[];
}

export async function submitJob(
  db: Kysely<JobsDatabase>,
  clusters: ClusterResolver,
  input: SubmitJobInput,
  options: { maxInputBytes: number },
): Promise<SubmitJobResult> {
  if (input.name.trim() === "") throw new InvalidArgumentError("name", "must not be empty");
  if (input.tasks.length === 0) throw new InvalidArgumentError("tasks", "a job needs at least one task");
  validateSubmissions(input.tasks, "tasks", options.maxInputBytes);
  const key = input.idempotencyKey ? input.idempotencyKey : null;
  if (key !== null) {
    const existing = await findJobByIdempotencyKey(db, input.teamId, key);
    if (existing) return { job: existing, created: false, ready: [] };
  }
  const slugs = [...new Set([input.clusterSlug, ...clusterOverrides(input.tasks)])];
  const resolved = await clusters.resolve(input.teamId, slugs);
  const jobCluster = resolved.get(input.clusterSlug);
  if (!jobCluster) throw new Error(`cluster resolver returned no cluster for ${JSON.stringify(input.clusterSlug)}`);

  const jobId = uuidv7();
  const plan = planTasks(input.tasks, { jobId, parentId: null, defaultCluster: jobCluster, clusters: resolved, state: QUEUED });
  // One statement, one round trip: a submission's latency is mostly waiting on Postgres.
  const job = await insertSubmission(
    db,
    {
      id: jobId,
      team_id: input.teamId,
      name: input.name,
      cluster_id: jobCluster.id,
      cluster_slug: jobCluster.slug,
      idempotency_key: key,
      queued: plan.tasks.length,
      total: plan.tasks.length,
    },
    plan.tasks,
    plan.edges,
  );
  if (job) return { job, created: true, ready: sortById(newTaskEnvelopes(job, plan.tasks)) };
  // A submission with the same key won: answer with that job.
  const existing = key === null ? undefined : await findJobByIdempotencyKey(db, input.teamId, key);
  if (!existing) throw new Error(`job ${jobId} was not inserted and no job has its idempotency key`);
  return { job: existing, created: false, ready: [] };
}

const sortById = (rows: EnvelopeRow[]) => rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
