// job-service's wiring: as a process component (its database and migrations, the registry and
// broker clients) and, inside it, the service (the ledger over the store, the outbox sweeper, the
// LISTEN connection for WatchJob, and the RPC mounts, TaskLedgerService internal).
import { DispatchService, JobService, TaskLedgerService } from "@corral/proto";
import {
  createDatabase,
  createRegistryClient,
  createServiceClient,
  envInt,
  migrateToLatest,
  pingDatabase,
  type ServiceComponent,
  type ServiceConfig,
  type ServiceMount,
} from "@corral/server-kit";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { createBrokerDispatcher } from "./clients/broker-dispatcher.js";
import { createRegistryClusterResolver } from "./clients/registry-cluster-resolver.js";
import type { ClusterResolver, Dispatcher } from "./domain/ports.js";
import { DEFAULT_MAX_INPUT_BYTES } from "./domain/task-plan.js";
import { createJobLedger, type JobLedger } from "./job-ledger.js";
import { createJobNotifier } from "./job-notifier.js";
import { createJobServiceImpl } from "./job-service.js";
import { JOBS_SCHEMA, type JobsDatabase } from "./store/database.js";
import { jobsMigrations } from "./store/migrations/index.js";
import { createSubmitQuotas, readSubmitQuotas, type SubmitQuotas } from "./submit-quotas.js";
import { createTaskLedgerServiceImpl } from "./task-ledger-service.js";

export interface JobsComponent extends ServiceComponent {
  jobs: JobServiceHandle;
}

export async function createJobsComponent(
  config: ServiceConfig,
  options: { logger?: Logger; clusters?: ClusterResolver; dispatcher?: Dispatcher; env?: Record<string, string | undefined> } = {},
): Promise<JobsComponent> {
  const env = options.env ?? process.env;
  const db = createDatabase<JobsDatabase>({ url: config.databaseUrl, schema: JOBS_SCHEMA, applicationName: "job-service" });
  try {
    await migrateToLatest(db, JOBS_SCHEMA, jobsMigrations);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  // One registry client: cluster slugs resolve and API keys verify over it (runComponents).
  const registry = createRegistryClient({ baseUrl: config.registryUrl, serviceKey: config.serviceKey });
  const clusters = options.clusters ?? createRegistryClusterResolver(registry);
  const dispatcher =
    options.dispatcher ??
    createBrokerDispatcher(
      // Submissions wait for the first enqueue; a slow broker must not hold them long, the outbox
      // sweeper re-sends what did not get through.
      createServiceClient(DispatchService, { baseUrl: config.brokerUrl, apiKey: config.serviceKey, timeoutMs: 5_000 }),
    );
  const jobs = createJobService({
    db,
    clusters,
    dispatcher,
    databaseUrl: config.databaseUrl,
    maxInputBytes: envInt("CORRAL_MAX_INPUT_BYTES", DEFAULT_MAX_INPUT_BYTES, { min: 1, max: 64 * 1024 * 1024 }, env),
    quotas: createSubmitQuotas(readSubmitQuotas(env)),
    logger: options.logger,
  });
  let closed: Promise<void> | undefined;
  return {
    name: "job-service",
    jobs,
    mounts: jobs.mounts,
    registryClient: registry,
    check: () => pingDatabase(db),
    start: () => jobs.start(),
    close: () =>
      (closed ??= (async () => {
        await jobs.close();
        await db.destroy();
      })()),
  };
}

export interface JobServiceOptions {
  db: Kysely<JobsDatabase>;
  clusters: ClusterResolver;
  dispatcher: Dispatcher;
  /** Largest task input in bytes (default 1 MiB). */
  maxInputBytes?: number;
  /** How often the outbox sweeper runs (default 2 s). */
  sweepIntervalMs?: number;
  /** Age after which the sweeper re-sends an unacknowledged outbox row (default 5 s). */
  sweepAfterMs?: number;
  /**
   * Connection string of the jobs database, for the LISTEN connection behind WatchJob. Without it
   * WatchJob polls once a second.
   */
  databaseUrl?: string;
  /** Per-team submission quotas (none when unset). */
  quotas?: SubmitQuotas;
  /** How often queued attempts are checked against their schedule-to-start deadline (default 1 s). */
  startTimeoutSweepMs?: number;
  /** The clock of delays, backoff and deadlines (tests inject one). */
  now?: () => Date;
  /** Draws retry jitter (default Math.random). */
  random?: () => number;
  logger?: Logger;
}

export interface JobServiceHandle {
  mounts: ServiceMount[];
  ledger: JobLedger;
  /** Starts the outbox sweeper. */
  start(): void;
  /** Stops the sweeper and the LISTEN connection; the database stays open (the caller owns it). Idempotent. */
  close(): Promise<void>;
  /** One sweep of the outbox; returns the number of tasks re-sent. */
  sweepOnce(): Promise<number>;
  /** Enqueues every queued, dispatchable task again (for when Redis lost its data). */
  requeueAll(): Promise<number>;
}

export function createJobService(options: JobServiceOptions): JobServiceHandle {
  const notifier = options.databaseUrl
    ? createJobNotifier({
        url: options.databaseUrl,
        onError: (err) => options.logger?.warn({ err }, "job change listener failed; reconnecting"),
      })
    : undefined;
  const ledger = createJobLedger({ ...options, notifier });
  let closing: Promise<void> | undefined;
  return {
    mounts: [
      { service: JobService, impl: createJobServiceImpl(ledger) },
      { service: TaskLedgerService, impl: createTaskLedgerServiceImpl(ledger), internal: true },
    ],
    ledger,
    start: () => {
      ledger.relay.start();
      ledger.startTimeouts.start();
    },
    close() {
      closing ??= (async () => {
        const results = await Promise.allSettled([ledger.relay.close(), ledger.startTimeouts.close(), notifier?.close()]);
        for (const r of results) if (r.status === "rejected") options.logger?.warn({ err: r.reason }, "job-service close step failed");
      })();
      return closing;
    },
    sweepOnce: () => ledger.relay.sweepOnce(),
    requeueAll: () => ledger.relay.requeueAll(),
  };
}
