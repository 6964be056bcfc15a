// WatchJob: the job now, then the job and its changed tasks after every change, until the job ends
// or the caller goes away. Woken by LISTEN/NOTIFY; a slow timer covers a lost notification.
import { NotFoundError } from "@corral/server-kit";
import type { Kysely } from "kysely";
import type { JobsDatabase, ProgressJson } from "../store/database.js";
import { findJob, jobProgress, type JobRow } from "../store/job-repository.js";
import { lastChangeSeq, tasksChangedAfter, type TaskDetailRow } from "../store/task-query-repository.js";
import type { JobNotifier } from "../job-notifier.js";
import { isJobEnded } from "./states.js";

export interface JobChange {
  job: JobRow;
  progress: ProgressJson[];
  changedTasks: TaskDetailRow[];
}

const CHANGED_TASKS_PER_MESSAGE = 1_000;

export async function* watchJob(
  db: Kysely<JobsDatabase>,
  notifier: JobNotifier | undefined,
  teamId: string,
  jobId: string,
  signal: AbortSignal,
  options: { fallbackPollMs?: number } = {},
): AsyncGenerator<JobChange> {
  const pollMs = options.fallbackPollMs ?? (notifier ? 15_000 : 1_000);
  let dirty = false;
  let wake: (() => void) | undefined;
  const poke = () => {
    dirty = true;
    wake?.();
  };
  // Subscribe before the first read, so no change slips between the read and the subscription.
  const unsubscribe = notifier?.subscribe(jobId, poke) ?? (() => {});
  signal.addEventListener("abort", poke);
  try {
    const first = await db
      .transaction()
      .setIsolationLevel("repeatable read")
      .execute(async (tx) => {
        const found = await findJob(tx, teamId, jobId);
        if (!found) throw new NotFoundError("job", jobId);
        return { job: found, seq: await lastChangeSeq(tx, jobId), progress: await jobProgress(tx, jobId) };
      });
    let seq = first.seq;
    let job = first.job;
    yield { job, progress: first.progress, changedTasks: [] };
    while (!isJobEnded(job.state) && !signal.aborted) {
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
      if (signal.aborted) return;
      dirty = false;
      // One snapshot for the job, its progress and its changed tasks, so they agree with each other.
      const snapshot = await db
        .transaction()
        .setIsolationLevel("repeatable read")
        .execute(async (tx) => {
          const page = await tasksChangedAfter(tx, jobId, seq, CHANGED_TASKS_PER_MESSAGE);
          const next = await findJob(tx, teamId, jobId);
          return { page, next, progress: next ? await jobProgress(tx, jobId) : [] };
        });
      if (!snapshot.next) return;
      seq = snapshot.page.lastSeq;
      const moved = snapshot.next.state !== job.state || snapshot.next.total !== job.total || snapshot.page.tasks.length > 0;
      job = snapshot.next;
      if (moved) yield { job, progress: snapshot.progress, changedTasks: snapshot.page.tasks };
      // A full page means more changes are waiting: read on without sleeping.
      if (snapshot.page.tasks.length === CHANGED_TASKS_PER_MESSAGE) dirty = true;
    }
  } finally {
    signal.removeEventListener("abort", poke);
    unsubscribe();
  }
}
