// SubmitJob: validation, cluster resolution, then one transaction for the job, its tasks, their
// dependency edges and the outbox rows of the tasks that can start right away.
import type { TaskSubmission } from "@corral/proto";
import { InvalidArgumentError } from "@corral/server-kit";
import type { Kysely } from "kysely";
import { v7 as uuidv7 } from "uuid";
import type { JobsDatabase } from "../store/database.js";
import { findJobByIdempotencyKey, insertJob, type JobRow } from "../store/job-repository.js";
import { enqueueReady, type EnvelopeRow } from "../store/outbox-repository.js";
import { insertEdges, insertTasks } from "../store/task-repository.js";
import type { ClusterResolver } from "./ports.js";
import { QUEUED } from "./states.js";
import { clusterOverrides, planTasks, validateSubmissions } from "./task-plan.js";

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

class IdempotentReplay extends Error {}

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
  try {
    return await db.transaction().execute(async (tx) => {
      // BEGIN, three statements (four with dependencies), COMMIT: a submission waits mostly on Postgres.
      const job = await insertJob(tx, {
        id: jobId,
        team_id: input.teamId,
        name: input.name,
        cluster_id: jobCluster.id,
        cluster_slug: jobCluster.slug,
        idempotency_key: key,
        queued: plan.tasks.length,
        total: plan.tasks.length,
      });
      // A concurrent submission with the same key won: undo ours and answer with theirs.
      if (!job) throw new IdempotentReplay();
      await insertTasks(tx, plan.tasks);
      await insertEdges(tx, plan.edges);
      const ready = await enqueueReady(tx, plan.tasks.filter((t) => t.waiting_deps === 0).map((t) => t.id));
      return { job, created: true, ready };
    });
  } catch (err) {
    if (!(err instanceof IdempotentReplay) || key === null) throw err;
    const existing = await findJobByIdempotencyKey(db, input.teamId, key);
    if (!existing) throw err;
    return { job: existing, created: false, ready: [] };
  }
}
