// Turns task submissions (a job's roots, or the subtasks reported with a parent's result) into rows
// and dependency edges, after the checks protovalidate cannot express.
import type { TaskSubmission } from "@corral/proto";
import { InvalidArgumentError } from "@corral/server-kit";
import { v7 as uuidv7 } from "uuid";
import type { EnvelopeRow, JobRow, NewTaskRow, TaskDefaultsJson, TaskEdgeRow } from "../store/database.js";
import type { ResolvedCluster } from "./ports.js";
import { scheduleOf, startDeadline } from "./scheduling.js";
import { QUEUED } from "./states.js";

export const DEFAULT_MAX_INPUT_BYTES = 1024 * 1024;
/** The largest output a task may return inline, by default (CORRAL_MAX_OUTPUT_BYTES). */
export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;
const versionPattern = /^v\d+\.\d+$/;
const namePattern = /^[^\s]+$/;

/** A task row to insert. */
export type NewTask = NewTaskRow;

/** A dependency edge to insert. */
export type TaskEdge = TaskEdgeRow;

export interface PlannedTasks {
  tasks: NewTask[];
  edges: TaskEdge[];
}

/**
 * Checks what the proto rules cannot: dependencies point at earlier siblings (so no cycle is
 * possible), inputs fit the limit, identifiers are well formed (also when called without the
 * validation interceptor). `field` names the list, e.g. `tasks` or `results[2].completed.subtasks`.
 */
export function validateSubmissions(subs: readonly TaskSubmission[], field: string, maxInputBytes: number): void {
  subs.forEach((s, i) => {
    const at = `${field}[${i}]`;
    const name = s.identifier?.name ?? "";
    if (name.length === 0 || name.length > 256 || !namePattern.test(name)) {
      throw new InvalidArgumentError(`${at}.identifier.name`, "must be 1 to 256 characters without spaces");
    }
    if (!versionPattern.test(s.identifier?.version ?? "")) {
      throw new InvalidArgumentError(`${at}.identifier.version`, "must look like vMAJOR.MINOR");
    }
    if (s.priority > 9) throw new InvalidArgumentError(`${at}.priority`, "must be 0 to 9");
    if (s.input.byteLength > maxInputBytes) {
      throw new InvalidArgumentError(`${at}.input`, `is ${s.input.byteLength} bytes, the limit is ${maxInputBytes}`);
    }
    for (const d of s.dependsOn) {
      if (!Number.isInteger(d) || d < 0 || d >= i) {
        throw new InvalidArgumentError(
          `${at}.depends_on`,
          `index ${d} must point at an earlier task of the same submission (0 to ${i - 1})`,
        );
      }
    }
  });
}

/** The non-empty cluster overrides of a submission. */
export function clusterOverrides(subs: readonly TaskSubmission[]): string[] {
  const slugs = new Set<string>();
  for (const s of subs) if (s.clusterSlug !== "") slugs.add(s.clusterSlug);
  return [...slugs];
}

export function planTasks(
  subs: readonly TaskSubmission[],
  options: {
    jobId: string;
    parentId: string | null;
    /** The parent's cluster for subtasks, the job's for roots. */
    defaultCluster: ResolvedCluster;
    clusters: ReadonlyMap<string, ResolvedCluster>;
    state: number;
    /** The job's defaults for timeouts and backoff. */
    defaults: TaskDefaultsJson | null;
    now: Date;
  },
): PlannedTasks {
  const ids = subs.map(() => uuidv7());
  const tasks: NewTask[] = [];
  const edges: TaskEdge[] = [];
  const dependedOn = new Set<number>();
  for (const s of subs) for (const d of s.dependsOn) dependedOn.add(d);
  subs.forEach((s, i) => {
    const cluster = s.clusterSlug === "" ? options.defaultCluster : options.clusters.get(s.clusterSlug);
    if (!cluster) throw new Error(`cluster ${s.clusterSlug} was not resolved`);
    const deps = [...new Set(s.dependsOn)];
    const schedule = scheduleOf(s, options.defaults, options.now);
    for (const d of deps) edges.push({ task_id: ids[i]!, depends_on_id: ids[d]! });
    tasks.push({
      id: ids[i]!,
      job_id: options.jobId,
      parent_id: options.parentId,
      position: i,
      cluster_id: cluster.id,
      cluster_slug: cluster.slug,
      identifier_name: s.identifier!.name,
      identifier_version: s.identifier!.version,
      input: Buffer.from(s.input.buffer, s.input.byteOffset, s.input.byteLength),
      display: s.display !== "" ? s.display : s.identifier!.name,
      state: options.state,
      max_retries: s.maxRetries,
      optional: s.optional,
      waiting_deps: deps.length,
      has_dependants: dependedOn.has(i),
      ...schedule,
      // A task waiting for dependencies gets its deadline when they are met (addReadyToOutbox).
      start_deadline: deps.length === 0 ? startDeadline(schedule.start_timeout_ms, schedule.not_before, options.now) : null,
    });
  });
  return { tasks, edges };
}

/**
 * The envelopes of new tasks of `job` that are ready (queued, nothing to wait for), built from
 * the plan itself: a submission or a batch of subtasks need not read its own rows back. A delayed
 * one (not_before) is ready but not due: its outbox row waits for the sweeper.
 */
export function newTaskEnvelopes(job: JobRow, tasks: readonly NewTask[]): EnvelopeRow[] {
  return tasks
    .filter((t) => t.state === QUEUED && t.waiting_deps === 0)
    .map((t) => ({
      id: t.id,
      job_id: t.job_id,
      team_id: job.team_id,
      cluster_id: t.cluster_id,
      cluster_slug: t.cluster_slug,
      identifier_name: t.identifier_name,
      identifier_version: t.identifier_version,
      attempt: 1,
      input: t.input,
      display: t.display,
      parent_id: t.parent_id,
      job_name: job.name,
      trace_id: job.trace_id,
      trace_flags: job.trace_flags,
      retry_count: 0,
      max_retries: t.max_retries,
      exec_timeout_ms: t.exec_timeout_ms,
      not_before: t.not_before,
      priority: t.priority,
    }));
}
