// Wires job-service: the domain ledger, its outbox sweeper, the LISTEN connection for WatchJob,
// and the RPC mounts (TaskLedgerService internal).
import { JobService, TaskLedgerService } from "@corral/proto";
import type { ServiceMount } from "@corral/server-kit";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { ClusterResolver, Dispatcher } from "./domain/ports.js";
import { createJobLedger, type JobLedger } from "./job-ledger.js";
import { createJobNotifier } from "./job-notifier.js";
import { createJobServiceImpl } from "./job-service.js";
import type { JobsDatabase } from "./store/database.js";
import type { SubmitQuotas } from "./submit-quotas.js";
import { createTaskLedgerServiceImpl } from "./task-ledger-service.js";

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
    start: () => ledger.relay.start(),
    close() {
      closing ??= (async () => {
        const results = await Promise.allSettled([ledger.relay.close(), notifier?.close()]);
        for (const r of results) if (r.status === "rejected") options.logger?.warn({ err: r.reason }, "job-service close step failed");
      })();
      return closing;
    },
    sweepOnce: () => ledger.relay.sweepOnce(),
    requeueAll: () => ledger.relay.requeueAll(),
  };
}
