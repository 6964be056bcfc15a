// What job-service's domain needs from the outside, as interfaces: the registry's clusters, the
// broker's dispatch plane, job change notices, and the jobs database (store/ implements it; the
// domain names only the schema's row types, never a repository).
import type { TaskEnvelope } from "@corral/proto";
import type {
  CanceledTaskRow,
  EnvelopeRow,
  GraphTaskRow,
  JobRow,
  NewJob,
  NewTaskRow,
  ProgressJson,
  TaskDetailRow,
  TaskEdgeRow,
  TaskStateRow,
} from "../store/database.js";
import type { JobDelta } from "./states.js";

export interface ResolvedCluster {
  id: string;
  slug: string;
}

/**
 * Resolves a team's cluster slugs (the empty slug is the team's default cluster). The real one calls
 * the registry's internal `ClusterService.ResolveClusters`. Unknown slugs throw `NotFoundError("cluster", slug)`.
 */
export interface ClusterResolver {
  resolve(teamId: string, slugs: string[]): Promise<Map<string, ResolvedCluster>>;
}

/** A task attempt handed to the broker and still queued there. */
export interface QueuedAttempt {
  clusterId: string;
  taskId: string;
  attempt: number;
}

/** Hands ready tasks to the broker and revokes leases; the real one calls the broker's `DispatchService`. */
export interface Dispatcher {
  enqueue(tasks: TaskEnvelope[]): Promise<void>;
  /**
   * An empty `taskIds` means every task of the job. `queued`: attempts whose stream entries the
   * broker deletes now.
   */
  revoke(teamId: string, jobId: string, taskIds: string[], reason: string, queued?: QueuedAttempt[]): Promise<void>;
}

/** Tells watchers of a job that it may have changed (the real one LISTENs to Postgres). */
export interface JobChanges {
  /** Calls `onChange` whenever the job may have changed; returns the unsubscribe. */
  subscribe(jobId: string, onChange: () => void): () => void;
}

/** The jobs database: repositories over the pool, or over one transaction inside `transaction`. */
export interface JobsStore {
  jobs: JobStore;
  tasks: TaskStore;
  outbox: OutboxStore;
  usage: TeamUsageStore;
  reads: TaskReads;
  /** Runs `work` in one transaction (commit on return, rollback on throw). */
  transaction<T>(work: (tx: JobsStore) => Promise<T>): Promise<T>;
}

export interface JobQuery {
  teamId: string;
  startTime?: Date;
  endTime?: Date;
  states: number[];
  name: string;
  clusterSlugs: string[];
  /** Counter columns of which at least one must be non-zero. */
  taskStateColumns: string[];
  afterId?: string;
  ascending: boolean;
  limit: number;
}

/** Job rows. Every writer of a job locks its row first (lockJob, lockJobsOfTasks), in id order. */
export interface JobStore {
  insertSubmission(job: NewJob, tasks: NewTaskRow[], edges: TaskEdgeRow[]): Promise<JobRow | undefined>;
  findJob(teamId: string, jobId: string): Promise<JobRow | undefined>;
  findJobByIdempotencyKey(teamId: string, key: string): Promise<JobRow | undefined>;
  findJobWithProgress(teamId: string, jobId: string): Promise<{ job: JobRow; progress: ProgressJson[] } | undefined>;
  queryJobs(q: JobQuery): Promise<JobRow[]>;
  lockJob(teamId: string, jobId: string): Promise<JobRow | undefined>;
  lockJobsOfTasks(taskIds: string[]): Promise<JobRow[]>;
  setJobCanceled(jobId: string, canceled: boolean): Promise<void>;
  /** Adds the counter deltas to each job (those without one are settled all the same) and notifies watchers. */
  settleJobs(jobIds: string[], deltas: JobDelta[]): Promise<void>;
}

/** The tasks below optional branch roots that a failure in the branch skips. */
export interface SkippedBranches {
  /** Every task below the branch roots (not the roots themselves). */
  subtreeIds: string[];
  /** Tasks that were queued, running or canceled and are now SKIPPED, with their state before. */
  skipped: { id: string; job_id: string; old_state: number }[];
  /** Branch roots that turned from COMPUTED to FAILED_OPTIONAL. */
  failedRoots: { id: string; job_id: string }[];
}

/** A task whose count of unmet dependencies went down. */
export type ReleasedDependant = Pick<TaskStateRow, "id" | "waiting_deps" | "state">;
/** A parent whose count of open children went down. */
export type ReleasedParent = Pick<TaskStateRow, "id" | "parent_id" | "open_children" | "state" | "has_dependants">;

/** Task rows and their dependency edges, written set-based (one statement per call, or a few). */
export interface TaskStore {
  insertTasks(tasks: NewTaskRow[]): Promise<void>;
  /** More tasks of a submission whose job row is written, with their edges and outbox rows. */
  insertSubmittedTasks(tasks: NewTaskRow[], edges: TaskEdgeRow[]): Promise<void>;
  insertEdges(edges: TaskEdgeRow[]): Promise<void>;
  loadTasks(taskIds: string[]): Promise<TaskStateRow[]>;
  updateTasks(rows: TaskStateRow[]): Promise<void>;
  teamsOfTasks(taskIds: string[]): Promise<Map<string, string>>;
  nearestOptionalAncestors(taskIds: string[]): Promise<Map<string, string>>;
  skipBranches(rootIds: string[], now: Date): Promise<SkippedBranches>;
  cancelQueuedTasks(jobIds: string[]): Promise<CanceledTaskRow[]>;
  releaseDependants(doneIds: string[]): Promise<ReleasedDependant[]>;
  releaseParents(doneIds: string[]): Promise<ReleasedParent[]>;
  requeueFailedTasks(jobId: string): Promise<{ requeued: { id: string; old_state: number }[]; dropped: { state: number; n: number }[] }>;
  runningTaskIdsOfJob(jobId: string): Promise<string[]>;
}

/** An outbox row's key: one attempt of one task. */
export interface OutboxKey {
  taskId: string;
  attempt: number;
}

/** The outbox: one row per ready task attempt the broker has not acknowledged yet. */
export interface OutboxStore {
  /**
   * Of the candidates, those queued with every dependency met get an outbox row (held until their
   * not_before when that is after `now`) and their schedule-to-start deadline; returns their envelopes.
   */
  addReady(candidateIds: string[], now: Date): Promise<EnvelopeRow[]>;
  insert(rows: ReadonlyArray<{ taskId: string; attempt: number; jobId: string; notBefore: Date | null }>): Promise<void>;
  delete(keys: OutboxKey[]): Promise<number>;
  deleteOfJob(jobId: string): Promise<void>;
}

/** Each team's count of open (queued + running) tasks, which its quota limits. */
export interface TeamUsageStore {
  readOpenTasks(teamIds: string[]): Promise<Map<string, number>>;
  reserveOpenTasks(teamId: string, n: number, limit: number): Promise<boolean>;
  /** Applies per-team changes; returns the teams whose increase the limit refused. */
  addOpenTasks(deltas: ReadonlyMap<string, number>, limit: number): Promise<string[]>;
}

/** Reads of tasks for the public API. */
export interface TaskReads {
  listTaskLevel(q: { jobId: string; parentId: string | null; afterPosition: number; limit: number; includeInput: boolean }): Promise<TaskDetailRow[]>;
  findTasks(jobId: string, taskIds: string[]): Promise<TaskDetailRow[]>;
  graphTasks(jobId: string, limit: number): Promise<GraphTaskRow[]>;
  graphEdges(jobId: string): Promise<TaskEdgeRow[]>;
  graphSummary(jobId: string): Promise<{
    groups: { identifier_name: string; identifier_version: string; state: number; n: number }[];
    links: { from_key: string; to_key: string; kind: "parent" | "dependency"; n: number }[];
  }>;
  watchSnapshot(
    teamId: string,
    jobId: string,
    afterSeq: number | null,
    limit: number,
  ): Promise<{ job: JobRow; progress: ProgressJson[]; lastSeq: number; tasks: TaskDetailRow[] } | undefined>;
}
