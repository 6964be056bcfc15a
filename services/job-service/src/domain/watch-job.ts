// WatchJob: the job now, then the job and its changed tasks after every change, until the job ends
// or the caller goes away. Woken by LISTEN/NOTIFY; a slow timer covers a lost notification.
import { NotFoundError } from "@corral/server-kit";
import type { JobRow, ProgressJson, TaskDetailRow } from "../store/database.js";
import type { JobChanges, JobsStore } from "./ports.js";
import { isJobEnded } from "./states.js";

export interface JobChange {
  job: JobRow;
  progress: ProgressJson[];
  changedTasks: TaskDetailRow[];
}

const CHANGED_TASKS_PER_MESSAGE = 1_000;

export async function* watchJob(
  store: JobsStore,
  notifier: JobChanges | undefined,
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
    // Each read is one statement: the job, its progress and its changed tasks agree with each other.
    const first = await store.reads.watchSnapshot(teamId, jobId, null, CHANGED_TASKS_PER_MESSAGE);
    if (!first) throw new NotFoundError("job", jobId);
    let seq = first.lastSeq;
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
      const snapshot = await store.reads.watchSnapshot(teamId, jobId, seq, CHANGED_TASKS_PER_MESSAGE);
      if (!snapshot) return;
      seq = snapshot.lastSeq;
      const moved = snapshot.job.state !== job.state || snapshot.job.total !== job.total || snapshot.tasks.length > 0;
      job = snapshot.job;
      if (moved) yield { job, progress: snapshot.progress, changedTasks: snapshot.tasks };
      // A full page means more changes are waiting: read on without sleeping.
      if (snapshot.tasks.length === CHANGED_TASKS_PER_MESSAGE) dirty = true;
    }
  } finally {
    signal.removeEventListener("abort", poke);
    unsubscribe();
  }
}
