// The JobsStore port over Postgres: each repository function bound to the pool, or to one
// transaction inside `transaction`.
import type { Kysely } from "kysely";
import type { JobsStore } from "../domain/ports.js";
import type { JobsDatabase, JobsDb } from "./database.js";
import {
  findJob,
  findJobByIdempotencyKey,
  findJobWithProgress,
  insertSubmission,
  lockJob,
  lockJobsOfTasks,
  queryJobs,
  setJobCanceled,
  settleJobs,
} from "./job-repository.js";
import * as automations from "./automation-repository.js";
import { insertOutputs } from "./output-repository.js";
import { findSubmissionDigest, saveSubmissionDigest } from "./submission-digest-repository.js";
import { addReadyToOutbox, deleteOutbox, deleteOutboxOfJob, insertOutbox } from "./outbox-repository.js";
import { findTasks, graphEdges, graphSummary, graphTasks, listTaskLevel, watchSnapshot } from "./task-query-repository.js";
import {
  cancelQueuedTasks,
  insertEdges,
  insertSubmittedTasks,
  insertTasks,
  loadTasks,
  nearestOptionalAncestors,
  releaseDependants,
  releaseParents,
  requeueFailedTasks,
  runningTaskIdsOfJob,
  skipBranches,
  teamsOfTasks,
  updateTasks,
} from "./task-repository.js";
import { addOpenTasks, readOpenTasks, reserveOpenTasks } from "./team-usage-repository.js";
import { currentAttempts, insertSpans, spanTasksPage, stoppedSpanTasks, supersededSpans } from "./span-repository.js";

export function createJobsStore(db: Kysely<JobsDatabase>): JobsStore {
  return {
    ...repositories(db),
    transaction: (work) => db.transaction().execute((tx) => work({ ...repositories(tx), transaction: nested })),
  };
}

const nested = (): never => {
  throw new Error("job-service transactions do not nest");
};

/** Repository functions with their first argument, the database, bound. */
type Bound<T> = { [K in keyof T]: T[K] extends (db: JobsDb, ...args: infer A) => infer R ? (...args: A) => R : never };

function bind<T extends Record<string, (db: JobsDb, ...args: never[]) => unknown>>(db: JobsDb, fns: T): Bound<T> {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(fns)) out[name] = (...args: never[]) => fn(db, ...args);
  return out as Bound<T>;
}

function repositories(db: JobsDb): Omit<JobsStore, "transaction"> {
  return {
    jobs: bind(db, {
      insertSubmission,
      findJob,
      findJobByIdempotencyKey,
      findJobWithProgress,
      queryJobs,
      lockJob,
      lockJobsOfTasks,
      setJobCanceled,
      settleJobs,
      saveSubmissionDigest,
      findSubmissionDigest,
    }),
    tasks: bind(db, {
      insertTasks,
      insertSubmittedTasks,
      insertEdges,
      loadTasks,
      updateTasks,
      teamsOfTasks,
      nearestOptionalAncestors,
      skipBranches,
      cancelQueuedTasks,
      releaseDependants,
      releaseParents,
      requeueFailedTasks,
      runningTaskIdsOfJob,
      insertOutputs,
    }),
    outbox: bind(db, { addReady: addReadyToOutbox, insert: insertOutbox, delete: deleteOutbox, deleteOfJob: deleteOutboxOfJob }),
    usage: bind(db, { readOpenTasks, reserveOpenTasks, addOpenTasks }),
    spans: bind(db, { insertSpans, spanTasksPage, supersededSpans, currentAttempts, stoppedSpanTasks }),
    reads: bind(db, { listTaskLevel, findTasks, graphTasks, graphEdges, graphSummary, watchSnapshot }),
    automations: bind(db, {
      insertAutomation: automations.insertAutomation,
      insertTriggers: automations.insertTriggers,
      deleteTriggers: automations.deleteTriggers,
      findAutomation: automations.findAutomation,
      findAutomationById: automations.findAutomationById,
      triggersOf: automations.triggersOf,
      listAutomations: automations.listAutomations,
      updateAutomation: automations.updateAutomation,
      setTriggersNextPoll: automations.setTriggersNextPoll,
      deleteAutomation: automations.deleteAutomation,
      recentFires: automations.recentFires,
      nextDue: automations.nextDue,
      lockDueAutomations: automations.lockDueAutomations,
      lockDueTriggers: automations.lockDueTriggers,
      advanceTrigger: automations.advanceTrigger,
      claimFire: automations.claimFire,
      setFireJob: automations.setFireJob,
      setFireSkipped: automations.setFireSkipped,
      seenFireKeys: automations.seenFireKeys,
      hasOpenJob: automations.hasOpenJob,
      watchedDirectories: automations.watchedDirectories,
    }),
  };
}
