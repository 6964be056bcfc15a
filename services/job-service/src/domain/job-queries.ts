// Reads: a job with its statistics and progress, progress alone, job queries, one tree level.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { JobState, TaskState, type QueryJobsRequest } from "@corral/proto";
import { InvalidArgumentError, NotFoundError } from "@corral/server-kit";
import type { JobRow, ProgressJson, TaskDetailRow } from "../store/database.js";
import type { ClusterResolver, JobsStore } from "./ports.js";
import { decodePageToken, encodePageToken } from "./page-token.js";
import { stateCounterColumn } from "./states.js";

export interface JobWithProgress {
  job: JobRow;
  progress: ProgressJson[];
}

export async function getJob(store: JobsStore, teamId: string, jobId: string): Promise<JobWithProgress> {
  const found = await store.jobs.findJobWithProgress(teamId, jobId);
  if (!found) throw new NotFoundError("job", jobId);
  return found;
}

export const DEFAULT_PAGE_SIZE = 100;

export interface JobPage {
  jobs: Array<JobRow & { progress_json: ProgressJson[] }>;
  nextPageToken: string;
}

const isIdToken = (v: Record<string, unknown>): v is { id: string } => typeof v.id === "string";

/**
 * A page of the team's jobs. With `clusters`, a first page that comes back empty for cluster
 * slugs the team does not have is NOT_FOUND naming the slug (a typo is not "no jobs"); jobs of
 * a deleted cluster are still listed by its slug.
 */
export async function queryJobs(store: JobsStore, teamId: string, q: QueryJobsRequest, clusters?: ClusterResolver): Promise<JobPage> {
  const limit = q.pageSize === 0 ? DEFAULT_PAGE_SIZE : q.pageSize;
  const after = decodePageToken(q.pageToken, isIdToken);
  const startTime = q.startTime ? timestampDate(q.startTime) : undefined;
  const endTime = q.endTime ? timestampDate(q.endTime) : undefined;
  if (startTime && endTime && endTime < startTime) {
    throw new InvalidArgumentError("end_time", "must not be before start_time");
  }
  if (q.idFrom !== "" && q.idTo !== "" && q.idTo < q.idFrom) {
    throw new InvalidArgumentError("id_to", "must not be below id_from");
  }
  const rows = await store.jobs.queryJobs({
    teamId,
    idFrom: q.idFrom === "" ? undefined : q.idFrom,
    idTo: q.idTo === "" ? undefined : q.idTo,
    startTime,
    endTime,
    states: q.states.filter((s) => s !== JobState.UNSPECIFIED),
    name: q.name,
    clusterSlugs: q.clusterSlugs.filter((s) => s !== ""),
    automationId: q.automationId === "" ? undefined : q.automationId,
    taskStateColumns: q.taskStates
      .filter((s) => s !== TaskState.UNSPECIFIED)
      .map((s) => stateCounterColumn[s as keyof typeof stateCounterColumn]),
    afterId: after?.id,
    ascending: q.ascending,
    limit: limit + 1,
  });
  const slugs = q.clusterSlugs.filter((s) => s !== "");
  // Resolving throws NotFoundError for a slug that names none of the team's clusters.
  if (rows.length === 0 && !after && slugs.length > 0 && clusters) await clusters.resolve(teamId, slugs);
  const more = rows.length > limit;
  const jobs = rows.slice(0, limit);
  return { jobs, nextPageToken: more ? encodePageToken({ id: jobs[jobs.length - 1]!.id }) : "" };
}

export interface TaskPage {
  tasks: TaskDetailRow[];
  nextPageToken: string;
}

const isPositionToken = (v: Record<string, unknown>): v is { p: number } => typeof v.p === "number";

export async function listTasks(
  store: JobsStore,
  teamId: string,
  q: { jobId: string; parentId: string; pageSize: number; pageToken: string; includeInput: boolean; includeOutput?: boolean },
): Promise<TaskPage> {
  const job = await store.jobs.findJob(teamId, q.jobId);
  if (!job) throw new NotFoundError("job", q.jobId);
  if (q.parentId !== "" && (await store.reads.findTasks(q.jobId, [q.parentId])).length === 0) {
    throw new NotFoundError("task", q.parentId);
  }
  const limit = q.pageSize === 0 ? DEFAULT_PAGE_SIZE : q.pageSize;
  const after = decodePageToken(q.pageToken, isPositionToken);
  const rows = await store.reads.listTaskLevel({
    jobId: q.jobId,
    parentId: q.parentId === "" ? null : q.parentId,
    afterPosition: after?.p ?? -1,
    limit: limit + 1,
    includeInput: q.includeInput,
    includeOutput: q.includeOutput ?? false,
  });
  const more = rows.length > limit;
  const tasks = rows.slice(0, limit);
  return { tasks, nextPageToken: more ? encodePageToken({ p: tasks[tasks.length - 1]!.position }) : "" };
}

/** One task of a team's job with its input and its current attempt's output. */
export async function getTask(store: JobsStore, teamId: string, jobId: string, taskId: string): Promise<TaskDetailRow> {
  const job = await store.jobs.findJob(teamId, jobId);
  if (!job) throw new NotFoundError("job", jobId);
  const [task] = await store.reads.findTasks(jobId, [taskId], true);
  if (!task) throw new NotFoundError("task", taskId);
  return task;
}
