import type { Migration } from "kysely";
import * as createJobs from "./0001-create-jobs.js";

/** Numbered migrations of the `jobs` schema, for `migrateToLatest(db, JOBS_SCHEMA, jobsMigrations)`. */
export const jobsMigrations: Record<string, Migration> = {
  "0001_create_jobs": createJobs,
};
