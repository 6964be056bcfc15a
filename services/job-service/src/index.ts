// @corral/job-service: jobs, task graphs, states, retries, cancellation, progress and the outbox.
export { createJobLedger, type JobLedger, type JobLedgerOptions } from "./job-ledger.js";
export { createJobNotifier, type JobNotifier } from "./job-notifier.js";
export type { ClusterResolver, Dispatcher, JobChanges, JobsStore, ResolvedCluster } from "./domain/ports.js";
export { createJobsStore } from "./store/jobs-store.js";
export { applyResults, type ApplyResultsInput, type ApplyResultsOutput } from "./domain/apply-results.js";
export { submitJob, type SubmitJobInput, type SubmitJobResult } from "./domain/submit-job.js";
export { cancelJob, retryJob } from "./domain/job-commands.js";
export { getJob, listTasks, queryJobs } from "./domain/job-queries.js";
export { visualizeJob } from "./domain/visualize-job.js";
export { watchJob } from "./domain/watch-job.js";
export { DEFAULT_MAX_INPUT_BYTES, DEFAULT_MAX_OUTPUT_BYTES } from "./domain/task-plan.js";
export { MAX_LEASE_EXPIRIES } from "./domain/states.js";
export { jobsMigrations } from "./store/migrations/index.js";
export { JOBS_SCHEMA, JOB_CHANGES_CHANNEL, type JobsDatabase } from "./store/database.js";
export {
  createJobsComponent,
  createJobService,
  type JobsComponent,
  type JobServiceHandle,
  type JobServiceOptions,
} from "./component.js";
export { createRegistryClusterResolver } from "./clients/registry-cluster-resolver.js";
export { createBrokerDispatcher } from "./clients/broker-dispatcher.js";
