// job-service as a process component: its database and migrations, the registry and broker
// clients, the outbox sweeper and the mounts.
import { DispatchService } from "@corral/proto";
import {
  createDatabase,
  createRegistryClient,
  createServiceClient,
  envInt,
  migrateToLatest,
  pingDatabase,
  type ServiceComponent,
  type ServiceConfig,
} from "@corral/server-kit";
import type { Logger } from "pino";
import { createBrokerDispatcher } from "./clients/broker-dispatcher.js";
import { createRegistryClusterResolver } from "./clients/registry-cluster-resolver.js";
import { createJobService, type JobServiceHandle } from "./create-job-service.js";
import type { ClusterResolver, Dispatcher } from "./domain/ports.js";
import { DEFAULT_MAX_INPUT_BYTES } from "./domain/task-plan.js";
import { JOBS_SCHEMA, type JobsDatabase } from "./store/database.js";
import { createSubmitQuotas, readSubmitQuotas } from "./submit-quotas.js";
import { jobsMigrations } from "./store/migrations/index.js";

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
