// CloneJob: a job's root tasks submitted again as a new job. The pure core turns the original's
// rows into the submission (identifiers, inputs, displays, retries, scheduling, dependencies among
// the roots, task defaults); submitJob then validates and stores it like any other.
import { create } from "@bufbuild/protobuf";
import { TaskDefaultsSchema, TaskSubmissionSchema, type TaskDefaults, type TaskSubmission } from "@corral/proto";
import { NotFoundError } from "@corral/server-kit";
import type { JobRow, TaskDefaultsJson, TaskDetailRow } from "../store/database.js";
import type { JobsStore } from "./ports.js";
import { backoffMessage, durationOfMs } from "./scheduling.js";
import type { SubmitJobInput } from "./submit-job.js";

/** Most root tasks a submission holds (SubmitJobRequest.tasks). */
const MAX_ROOTS = 10_000;

export interface CloneOptions {
  /** Empty: each root on the cluster it was on. */
  clusterSlug: string;
  /** Empty: the job's name. */
  name: string;
}

function defaultsMessage(d: TaskDefaultsJson | null): TaskDefaults | undefined {
  if (!d) return undefined;
  return create(TaskDefaultsSchema, {
    executionTimeout: durationOfMs(d.execTimeoutMs),
    scheduleToStartTimeout: durationOfMs(d.startTimeoutMs),
    retryBackoff: backoffMessage(d.retryBackoff),
  });
}

/** The submission that clones `job` from its root tasks (in position order). */
export function cloneSubmission(job: JobRow, roots: readonly TaskDetailRow[], options: CloneOptions): Omit<SubmitJobInput, "teamId"> {
  const index = new Map(roots.map((t, i) => [t.id, i]));
  const tasks: TaskSubmission[] = roots.map((t) =>
    create(TaskSubmissionSchema, {
      identifier: { name: t.identifier_name, version: t.identifier_version },
      input: t.input ? new Uint8Array(t.input) : new Uint8Array(),
      display: t.display,
      maxRetries: t.max_retries,
      optional: t.optional,
      clusterSlug: options.clusterSlug === "" ? t.cluster_slug : "",
      dependsOn: (t.depends_on ?? []).flatMap((id) => (index.has(id) ? [index.get(id)!] : [])),
      executionTimeout: durationOfMs(t.exec_timeout_ms),
      scheduleToStartTimeout: durationOfMs(t.start_timeout_ms),
      retryBackoff: backoffMessage(t.retry_backoff),
      priority: t.priority,
    }),
  );
  return {
    name: options.name === "" ? job.name : options.name,
    clusterSlug: options.clusterSlug === "" ? job.cluster_slug : options.clusterSlug,
    tasks,
    taskDefaults: defaultsMessage(job.task_defaults),
  };
}

/** Reads the team's job and its root tasks (with inputs) and builds the clone's submission. */
export async function readCloneSubmission(store: JobsStore, teamId: string, jobId: string, options: CloneOptions): Promise<SubmitJobInput> {
  const job = await store.jobs.findJob(teamId, jobId);
  if (!job) throw new NotFoundError("job", jobId);
  const roots = await store.reads.listTaskLevel({ jobId, parentId: null, afterPosition: -1, limit: MAX_ROOTS, includeInput: true });
  return { teamId, ...cloneSubmission(job, roots, options) };
}
