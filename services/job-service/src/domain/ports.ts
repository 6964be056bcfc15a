// What job-service's domain needs from the outside, as interfaces: the registry's clusters, the
// broker's dispatch plane, job change notices, and the jobs database (store/ implements it; the
// domain names only the schema's row types, never a repository).
import type { OnlineRunners } from "./wait-reasons.js";
import type { TaskEnvelope } from "@corral/proto";
import type {
  AutomationRow,
  FireRow,
  TriggerRow,
  TriggerSpec,
  CanceledTaskRow,
  EnvelopeRow,
  GraphTaskRow,
  JobRow,
  NewJob,
  NewTaskRow,
  NewTaskOutputRow,
  ProgressJson,
  TaskDetailRow,
  TaskEdgeRow,
  TaskStateRow,
  TaskSpanRow,
} from "../store/database.js";
import type { SpanTask } from "./traces/attempt-spans.js";
import type { StoppedSpanTask } from "../store/span-repository.js";
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

/** Which runners are online now, for saying why queued work waits (the broker's sessions). */
export interface RunnerPresence {
  /** The team's online (not draining) runners by cluster slug, each as the identifiers it serves. */
  online(teamId: string): Promise<OnlineRunners>;
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
  automations: AutomationStore;
  spans: SpanStore;
  /** Runs `work` in one transaction (commit on return, rollback on throw). */
  transaction<T>(work: (tx: JobsStore) => Promise<T>): Promise<T>;
}

export interface JobQuery {
  teamId: string;
  /** Ids at least this. */
  idFrom?: string;
  /** Ids below this. */
  idTo?: string;
  startTime?: Date;
  endTime?: Date;
  states: number[];
  name: string;
  clusterSlugs: string[];
  automationId?: string;
  /** Counter columns of which at least one must be non-zero. */
  taskStateColumns: string[];
  afterId?: string;
  ascending: boolean;
  limit: number;
}

/** Job rows. Every writer of a job locks its row first (lockJob, lockJobsOfTasks), in id order. */
export interface JobStore {
  insertSubmission(job: NewJob, tasks: NewTaskRow[], edges: TaskEdgeRow[], openTaskLimit?: number): Promise<JobRow | undefined>;
  findJob(teamId: string, jobId: string): Promise<JobRow | undefined>;
  findJobByIdempotencyKey(teamId: string, key: string): Promise<JobRow | undefined>;
  /** Records what an idempotency key was first used for (the first digest stays). */
  saveSubmissionDigest(teamId: string, key: string, digest: string): Promise<void>;
  /** What the key was first used for; undefined for keys used before digests were recorded. */
  findSubmissionDigest(teamId: string, key: string): Promise<string | undefined>;
  findJobWithProgress(teamId: string, jobId: string): Promise<{ job: JobRow; progress: ProgressJson[] } | undefined>;
  /** With each job's progress, as findJobWithProgress sums it. */
  queryJobs(q: JobQuery): Promise<Array<JobRow & { progress_json: ProgressJson[] }>>;
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
  /**
   * Writes the state machine's columns; a row's progress and display only where `ownsLive` says the
   * machine set them (ending an attempt), so live progress written meanwhile is not overwritten
   * with what was read before it.
   */
  updateTasks(rows: TaskStateRow[], ownsLive: boolean[]): Promise<void>;
  teamsOfTasks(taskIds: string[]): Promise<Map<string, string>>;
  nearestOptionalAncestors(taskIds: string[]): Promise<Map<string, string>>;
  skipBranches(rootIds: string[], now: Date): Promise<SkippedBranches>;
  cancelQueuedTasks(jobIds: string[], now: Date): Promise<CanceledTaskRow[]>;
  releaseDependants(doneIds: string[]): Promise<ReleasedDependant[]>;
  releaseParents(doneIds: string[]): Promise<ReleasedParent[]>;
  requeueFailedTasks(jobId: string): Promise<{ requeued: { id: string; old_state: number }[]; dropped: { state: number; n: number }[] }>;
  runningTaskIdsOfJob(jobId: string): Promise<string[]>;
  /** Stores what task attempts returned (once per attempt). */
  insertOutputs(rows: NewTaskOutputRow[]): Promise<void>;
}

/** Task attempt spans (see domain/traces/attempt-spans.ts). */
export interface SpanStore {
  /** Keeps attempts a retry or a re-queue superseded. */
  insertSpans(rows: readonly TaskSpanRow[]): Promise<void>;
  spanTasksPage(jobId: string, afterId: string, limit: number): Promise<SpanTask[]>;
  supersededSpans(jobId: string, taskIds: readonly string[]): Promise<TaskSpanRow[]>;
  currentAttempts(taskIds: readonly string[]): Promise<Map<string, number>>;
  stoppedSpanTasks(taskIds: readonly string[]): Promise<StoppedSpanTask[]>;
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
  listTaskLevel(q: {
    jobId: string;
    parentId: string | null;
    afterPosition: number;
    limit: number;
    includeInput: boolean;
    includeOutput?: boolean;
  }): Promise<TaskDetailRow[]>;
  /** Tasks of a job by id; `full` adds their input and current attempt's output. */
  findTasks(jobId: string, taskIds: string[], full?: boolean): Promise<TaskDetailRow[]>;
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

/** An automation's columns as written; the store stamps the times. */
export type NewAutomationRow = Omit<AutomationRow, "paused" | "create_time" | "update_time" | "cron_cursor"> & { paused: boolean };

export type AutomationChanges = Partial<
  Pick<AutomationRow, "name" | "identifier_name" | "identifier_version" | "input" | "display" | "max_retries" | "cluster_slug" | "overlap" | "catch_up" | "paused" | "cron_cursor" | "next_fire">
>;

/** One fire's unique row: a cron fire time or a storage object of one automation. */
export interface FireClaim {
  automationId: string;
  /** Unique per automation: the fire time for cron, the object and its version for storage. */
  fireKey: string;
  triggerId: string;
  fireTime: Date;
  object: string;
  skippedReason: string;
}

/** Automations, triggers and fires. Scheduler reads lock their rows with SKIP LOCKED. */
export interface AutomationStore {
  insertAutomation(a: NewAutomationRow, triggers: { id: string; spec: TriggerSpec }[], now: Date): Promise<void>;
  insertTriggers(automationId: string, triggers: { id: string; spec: TriggerSpec }[], nextPoll: Date | null, since: Date): Promise<void>;
  deleteTriggers(automationId: string): Promise<void>;
  findAutomation(teamId: string, id: string, lock?: boolean): Promise<AutomationRow | undefined>;
  findAutomationById(id: string): Promise<AutomationRow | undefined>;
  triggersOf(automationIds: string[]): Promise<TriggerRow[]>;
  listAutomations(teamId: string, afterId: string | undefined, limit: number): Promise<AutomationRow[]>;
  updateAutomation(id: string, changes: AutomationChanges, now: Date): Promise<void>;
  setTriggersNextPoll(automationId: string, nextPoll: Date | null): Promise<void>;
  deleteAutomation(teamId: string, id: string): Promise<boolean>;
  recentFires(automationId: string, limit: number): Promise<FireRow[]>;
  /** The earliest next fire or poll time over all automations (null: none). */
  nextDue(): Promise<Date | null>;
  lockDueAutomations(now: Date, limit: number): Promise<AutomationRow[]>;
  /** Due storage triggers, or only `onlyId` whatever its time (a watch event), locked. */
  lockDueTriggers(now: Date, limit: number, onlyId?: string): Promise<TriggerRow[]>;
  advanceTrigger(id: string, cursor: string, nextPoll: Date): Promise<void>;
  claimFire(fire: FireClaim): Promise<boolean>;
  setFireJob(automationId: string, fireKey: string, jobId: string): Promise<void>;
  setFireSkipped(automationId: string, fireKey: string, reason: string): Promise<void>;
  seenFireKeys(automationId: string, keys: string[]): Promise<Set<string>>;
  hasOpenJob(automationId: string): Promise<boolean>;
  /** Directory triggers of unpaused automations, for the replica's watchers. */
  watchedDirectories(): Promise<{ id: string; path: string }[]>;
}

/** An object a storage trigger found: a file or an S3 object. */
export interface StorageObject {
  /** Where it is: an absolute path, or s3://bucket/key. */
  location: string;
  /** The key within the listing (S3 key, or the path relative to the directory). */
  key: string;
  size: number;
  lastModified: Date;
  /** The S3 ETag, or `<mtime ms>-<size>` for a file: a new version is a new object. */
  version: string;
}

/** Lists what a storage trigger watches, after its cursor. */
export interface StorageLister {
  /**
   * Objects after `cursor` (the S3 start-after key or a directory's change-time watermark), and
   * the cursor to store once they are fired.
   */
  list(spec: TriggerSpec, cursor: string, since: Date, now: Date, signal?: AbortSignal): Promise<{ objects: StorageObject[]; cursor: string }>;
}
