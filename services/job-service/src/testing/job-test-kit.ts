// Test helpers for job-service: a migrated database per test file, an in-test cluster resolver,
// a recording dispatcher, and builders for submissions and broker results.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  LeaseExpiredSchema,
  ProgressIndicatorSchema,
  TaskCompletedSchema,
  TaskFailedSchema,
  TaskIdentifierSchema,
  TaskResultSchema,
  TaskStartedSchema,
  TaskSubmissionSchema,
  type TaskEnvelope,
  type TaskOutput,
  type TaskResult,
  type TaskSubmission,
} from "@corral/proto";
import { createDatabase, migrateToLatest, NotFoundError } from "@corral/server-kit";
import { createTestDatabase } from "@corral/server-kit/testing";
import type { Kysely } from "kysely";
import type { ClusterResolver, Dispatcher, ResolvedCluster } from "../domain/ports.js";
import { JOBS_SCHEMA, type JobsDatabase } from "../store/database.js";
import { jobsMigrations } from "../store/migrations/index.js";

export interface JobsTestDb {
  db: Kysely<JobsDatabase>;
  url: string;
  close(): Promise<void>;
}

export async function createJobsTestDb(label: string): Promise<JobsTestDb> {
  const t = await createTestDatabase(label);
  const db = createDatabase<JobsDatabase>({ url: t.url, schema: JOBS_SCHEMA, max: 10 });
  await migrateToLatest(db, JOBS_SCHEMA, jobsMigrations);
  return {
    db,
    url: t.url,
    async close() {
      await db.destroy();
      await t.drop();
    },
  };
}

/** Clusters per team: `""` is each team's default, `gpu` and `cpu` exist for every team. */
export function createTestClusters(): ClusterResolver & { calls: number } {
  const resolver = {
    calls: 0,
    async resolve(teamId: string, slugs: string[]): Promise<Map<string, ResolvedCluster>> {
      resolver.calls += 1;
      const map = new Map<string, ResolvedCluster>();
      for (const slug of slugs) {
        if (slug === "") map.set(slug, { id: `${teamId}-default-id`, slug: "default-AbCdEfGhIjKlMn" });
        else if (slug === "gpu" || slug === "cpu") map.set(slug, { id: `${teamId}-${slug}-id`, slug });
        else throw new NotFoundError("cluster", slug);
      }
      return map;
    },
  };
  return resolver;
}

export interface RecordingDispatcher extends Dispatcher {
  enqueued: TaskEnvelope[];
  revoked: { teamId: string; jobId: string; taskIds: string[]; reason: string }[];
  /** While true, enqueue throws (a broker that is down). */
  failing: boolean;
}

export function createRecordingDispatcher(): RecordingDispatcher {
  const d: RecordingDispatcher = {
    enqueued: [],
    revoked: [],
    failing: false,
    async enqueue(tasks) {
      if (d.failing) throw new Error("broker down");
      d.enqueued.push(...tasks);
    },
    async revoke(teamId, jobId, taskIds, reason) {
      d.revoked.push({ teamId, jobId, taskIds, reason });
    },
  };
  return d;
}

export function task(
  name: string,
  options: Partial<Omit<TaskSubmission, "identifier" | "$typeName">> & { version?: string } = {},
): TaskSubmission {
  const { version, ...rest } = options;
  return create(TaskSubmissionSchema, {
    identifier: create(TaskIdentifierSchema, { name, version: version ?? "v1.0" }),
    display: name,
    ...rest,
  });
}

type Target = Pick<TaskEnvelope, "taskId" | "attempt">;

/** The broker's start report; `startTimeMs` is the lease time it stamps (unset: job-service's now). */
export function started(t: Target, runnerId = "runner-1", startTimeMs?: number): TaskResult {
  return create(TaskResultSchema, {
    taskId: t.taskId,
    attempt: t.attempt,
    outcome: {
      case: "started",
      value: create(TaskStartedSchema, { runnerId, startTime: startTimeMs === undefined ? undefined : timestampFromMs(startTimeMs) }),
    },
  });
}

export function completed(
  t: Target,
  options: { subtasks?: TaskSubmission[]; progress?: { label: string; total: number; done: number }[]; display?: string; output?: TaskOutput } = {},
): TaskResult {
  return create(TaskResultSchema, {
    taskId: t.taskId,
    attempt: t.attempt,
    outcome: {
      case: "completed",
      value: create(TaskCompletedSchema, {
        display: options.display ?? "",
        subtasks: options.subtasks ?? [],
        output: options.output,
        progress: (options.progress ?? []).map((p) =>
          create(ProgressIndicatorSchema, { label: p.label, total: BigInt(p.total), done: BigInt(p.done) }),
        ),
      }),
    },
  });
}

export function failed(
  t: Target,
  options: {
    countsAsRetry?: boolean;
    unrecoverable?: boolean;
    error?: string;
    progress?: { label: string; total: number; done: number }[];
    /** What the failed attempt left to read (stored as its output). */
    output?: TaskOutput;
  } = {},
): TaskResult {
  return create(TaskResultSchema, {
    taskId: t.taskId,
    attempt: t.attempt,
    outcome: {
      case: "failed",
      value: create(TaskFailedSchema, {
        error: options.error ?? "boom",
        countsAsRetry: options.countsAsRetry ?? true,
        unrecoverable: options.unrecoverable ?? false,
        output: options.output,
        progress: (options.progress ?? []).map((p) =>
          create(ProgressIndicatorSchema, { label: p.label, total: BigInt(p.total), done: BigInt(p.done) }),
        ),
      }),
    },
  });
}

export function expired(t: Target): TaskResult {
  return create(TaskResultSchema, {
    taskId: t.taskId,
    attempt: t.attempt,
    outcome: { case: "expired", value: create(LeaseExpiredSchema, {}) },
  });
}
