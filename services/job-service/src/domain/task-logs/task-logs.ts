// Task logs: storing what brokers forward (checked per attempt, bounded per attempt in one
// transaction), and reading a job's lines by cursor or following them until the job ends.
import { InvalidArgumentError, NotFoundError } from "@corral/server-kit";
import type { Kysely } from "kysely";
import type { JobsDatabase } from "../../store/database.js";
import {
  addAttemptCounts,
  findLogTargets,
  insertLogLines,
  insertMarkerAt,
  jobStateOf,
  listLogLines,
  notifyTaskLogs,
  subtractAttemptCounts,
  trimAttempt,
  type NewLogLine,
  type TaskLogRow,
} from "../../store/task-log-repository.js";
import { isJobEnded } from "../states.js";
import { clampBatch, keptLines, lineBytes, lostMessage, markerMessage, storableFields, type LogLineInput, type TaskLogLimits } from "./log-bounds.js";

/** The marker's level: LogLevel.WARN. */
const MARKER_LEVEL = 4;

export interface TaskLogContext {
  db: Kysely<JobsDatabase>;
  limits: TaskLogLimits;
  /** Wakes followers when a job gets lines (LISTEN on TASK_LOGS_CHANNEL); unset: followers poll. */
  changes?: { subscribe(jobId: string, onChange: () => void): () => void };
}

export interface AttemptLogsInput {
  taskId: string;
  attempt: number;
  clusterId: string;
  lines: LogLineInput[];
  /** Lines dropped on the way (a runner's or broker's full buffer). */
  dropped: number;
}

export interface AppendOutcome {
  stored: number;
  /** Lines not stored: dropped on the way (`upstream`), past the per-attempt bound (`bound`), of refused attempts (`refused`). */
  dropped: { upstream: number; bound: number; refused: number };
  refused: Array<{ taskId: string; attempt: number; reason: string }>;
}

/** Stores the lines of many attempts in one transaction; attempts that are not a task's own are refused. */
export async function appendTaskLogs(ctx: TaskLogContext, input: AttemptLogsInput[]): Promise<AppendOutcome> {
  const targets = await findLogTargets(ctx.db, [...new Set(input.map((a) => a.taskId))]);
  const refused: AppendOutcome["refused"] = [];
  const dropped = { upstream: 0, bound: 0, refused: 0 };
  /** Accepted attempts by key, lines of repeated entries joined in order. */
  const accepted = new Map<string, AttemptLogsInput & { jobId: string }>();
  for (const a of input) {
    const t = targets.get(a.taskId);
    // Another cluster's task reads as unknown: a runner learns nothing of other teams' tasks.
    const reason = !t || t.cluster_id !== a.clusterId ? "task not found" : a.attempt < 1 || a.attempt > t.attempt ? "attempt never started" : undefined;
    if (reason) {
      refused.push({ taskId: a.taskId, attempt: a.attempt, reason });
      dropped.refused += a.lines.length;
      continue;
    }
    const key = `${a.taskId}\u0000${a.attempt}`;
    const lines = a.lines.map((l) => ({ ...l, fields: storableFields(l.fields) }));
    const seen = accepted.get(key);
    if (seen) {
      seen.lines.push(...lines);
      seen.dropped += a.dropped;
    } else accepted.set(key, { ...a, lines, jobId: t!.job_id });
  }
  if (accepted.size === 0) return { stored: 0, dropped, refused };

  const keep = keptLines(ctx.limits);
  let stored = 0;
  await ctx.db.transaction().execute(async (tx) => {
    const rows: NewLogLine[] = [];
    const counts: Array<{ task_id: string; attempt: number; job_id: string; lines: number; bytes: number }> = [];
    /** Markers for lines dropped on the way go first, then the lines. */
    for (const a of accepted.values()) {
      const { kept, dropped: clamped } = clampBatch(a.lines, ctx.limits);
      const base = { job_id: a.jobId, task_id: a.taskId, attempt: a.attempt };
      const at = kept[0]?.time ?? a.lines[a.lines.length - 1]?.time ?? new Date();
      if (a.dropped > 0) rows.push({ ...base, time: at, level: MARKER_LEVEL, message: lostMessage(a.dropped), fields: "", bytes: 0, dropped: a.dropped });
      if (clamped > 0) rows.push({ ...base, time: at, level: MARKER_LEVEL, message: markerMessage(clamped, ctx.limits), fields: "", bytes: 0, dropped: clamped });
      let bytes = 0;
      for (const l of kept) {
        const b = lineBytes(l);
        bytes += b;
        rows.push({ ...base, time: l.time, level: l.level, message: l.message, fields: l.fields, bytes: b });
      }
      stored += kept.length;
      dropped.upstream += a.dropped;
      dropped.bound += clamped;
      counts.push({ ...base, lines: kept.length, bytes });
    }
    const after = await addAttemptCounts(tx, counts);
    await insertLogLines(tx, rows);
    for (const c of after) {
      if (c.lines <= keep && c.bytes <= ctx.limits.maxBytes) continue;
      const gone = await trimAttempt(tx, c.task_id, c.attempt, keep, ctx.limits.maxBytes);
      if (gone.lastSeq === null) continue;
      const total = gone.lines + gone.markerDropped;
      const jobId = accepted.get(`${c.task_id}\u0000${c.attempt}`)!.jobId;
      await insertMarkerAt(tx, {
        seq: gone.lastSeq,
        job_id: jobId,
        task_id: c.task_id,
        attempt: c.attempt,
        time: gone.lastTime ?? new Date(),
        level: MARKER_LEVEL,
        message: markerMessage(total, ctx.limits),
        fields: "",
        bytes: 0,
        dropped: total,
      });
      await subtractAttemptCounts(tx, c.task_id, c.attempt, gone.lines, gone.bytes, gone.lines);
      dropped.bound += gone.lines;
    }
    await notifyTaskLogs(tx, [...new Set([...accepted.values()].map((a) => a.jobId))]);
  });
  return { stored, dropped, refused };
}

export interface LogListQuery {
  jobId: string;
  taskId: string;
  attempt: number;
  afterCursor: string;
  limit: number;
}

export interface LogPage {
  lines: TaskLogRow[];
  nextCursor: string;
  more: boolean;
}

const DEFAULT_LIMIT = 1_000;

function checkQuery(q: Pick<LogListQuery, "taskId" | "attempt">): void {
  if (q.attempt > 0 && q.taskId === "") throw new InvalidArgumentError("attempt", "needs task_id: attempts are numbered per task");
}

/** A page of the job's lines after the cursor (NOT_FOUND for another team's job). */
export async function listTaskLogs(ctx: TaskLogContext, teamId: string, q: LogListQuery): Promise<LogPage> {
  checkQuery(q);
  if ((await jobStateOf(ctx.db, teamId, q.jobId)) === undefined) throw new NotFoundError("job", q.jobId);
  return readPage(ctx, q);
}

async function readPage(ctx: TaskLogContext, q: LogListQuery): Promise<LogPage> {
  const limit = q.limit > 0 ? q.limit : DEFAULT_LIMIT;
  const rows = await listLogLines(ctx.db, {
    jobId: q.jobId,
    taskId: q.taskId || undefined,
    attempt: q.attempt || undefined,
    afterSeq: q.afterCursor || "0",
    limit: limit + 1,
  });
  const more = rows.length > limit;
  const lines = more ? rows.slice(0, limit) : rows;
  return { lines, nextCursor: lines.length > 0 ? lines[lines.length - 1]!.seq : q.afterCursor, more };
}

/**
 * The job's lines after the cursor, then new lines as they are stored, until the job has ended
 * and its last lines were sent, or the signal aborts. Woken by NOTIFY; a slow timer covers a lost
 * notification.
 */
export async function* followJobLogs(
  ctx: TaskLogContext,
  teamId: string,
  q: Omit<LogListQuery, "limit" | "attempt">,
  signal: AbortSignal,
  options: { fallbackPollMs?: number } = {},
): AsyncGenerator<TaskLogRow[]> {
  const pollMs = options.fallbackPollMs ?? (ctx.changes ? 15_000 : 1_000);
  let dirty = false;
  let wake: (() => void) | undefined;
  const poke = () => {
    dirty = true;
    wake?.();
  };
  // Subscribe before the first read, so no line slips between the read and the subscription.
  const unsubscribe = ctx.changes?.subscribe(q.jobId, poke) ?? (() => {});
  signal.addEventListener("abort", poke);
  try {
    checkQuery({ taskId: q.taskId, attempt: 0 });
    if ((await jobStateOf(ctx.db, teamId, q.jobId)) === undefined) throw new NotFoundError("job", q.jobId);
    let cursor = q.afterCursor;
    const drain = async function* (): AsyncGenerator<TaskLogRow[]> {
      for (;;) {
        const page = await readPage(ctx, { ...q, attempt: 0, afterCursor: cursor, limit: DEFAULT_LIMIT });
        cursor = page.nextCursor;
        if (page.lines.length > 0) yield page.lines;
        if (!page.more || signal.aborted) return;
      }
    };
    while (!signal.aborted) {
      dirty = false;
      yield* drain();
      const state = await jobStateOf(ctx.db, teamId, q.jobId);
      if (state === undefined) return;
      if (isJobEnded(state)) {
        // Lines stored before the job ended are visible now: send them and end.
        yield* drain();
        return;
      }
      if (!dirty) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, pollMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    }
  } finally {
    signal.removeEventListener("abort", poke);
    unsubscribe();
  }
}
