import type { Migration } from "kysely";
import * as createJobs from "./0001-create-jobs.js";
import * as taskHasDependants from "./0002-task-has-dependants.js";
import * as teamOpenTasks from "./0003-team-open-tasks.js";
import * as automations from "./0004-automations.js";
import * as taskOutputs from "./0005-task-outputs.js";
import * as taskScheduling from "./0006-task-scheduling.js";
import * as submissionDigests from "./0007-submission-digests.js";
import * as taskLogs from "./0008-task-logs.js";
import * as taskSpans from "./0009-task-spans.js";
import * as taskGates from "./0010-task-gates.js";
import * as tasksJobIdIndex from "./0011-tasks-job-id-index.js";
import * as tasksProgressIndex from "./0012-tasks-progress-index.js";

/** Numbered migrations of the `jobs` schema, for `migrateToLatest(db, JOBS_SCHEMA, jobsMigrations)`. */
export const jobsMigrations: Record<string, Migration> = {
  "0001_create_jobs": createJobs,
  "0002_task_has_dependants": taskHasDependants,
  "0003_team_open_tasks": teamOpenTasks,
  "0004_automations": automations,
  "0005_task_outputs": taskOutputs,
  "0006_task_scheduling": taskScheduling,
  "0007_submission_digests": submissionDigests,
  "0008_task_logs": taskLogs,
  "0009_task_spans": taskSpans,
  "0010_task_gates": taskGates,
  "0011_tasks_job_id_index": tasksJobIdIndex,
  "0012_tasks_progress_index": tasksProgressIndex,
};
