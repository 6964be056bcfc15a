// What the ledger's parts share: the store, the outbox relay, the limits and the clock, and how a
// revocation reaches the broker (a failure only logged).
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { Revocation } from "../domain/apply-results.js";
import type { ClusterResolver, Dispatcher, JobChanges, JobsStore, QueuedAttempt, RunnerPresence } from "../domain/ports.js";
import type { OutboxRelay } from "../outbox/outbox-relay.js";
import type { JobsDatabase } from "../store/database.js";
import type { SubmitQuotas } from "../submit-quotas.js";
import type { TaskMetrics } from "../task-metrics.js";
import type { SpanExport } from "../traces/span-export.js";

export interface LedgerContext {
  db: Kysely<JobsDatabase>;
  store: JobsStore;
  clusters: ClusterResolver;
  relay: OutboxRelay;
  maxInputBytes: number;
  maxOpenTasks: number;
  maxOutputBytes: number;
  now: () => Date;
  random?: () => number;
  logger?: Logger;
  notifier?: JobChanges;
  quotas?: SubmitQuotas;
  presence?: RunnerPresence;
  spanExport?: SpanExport;
  taskMetrics?: TaskMetrics;
  /** Asks the broker to cancel leases and drop queued entries; a failure is only logged. */
  revoke(r: Revocation, queued?: QueuedAttempt[]): Promise<void>;
}

/** A revoke that logs instead of failing: the runner's later result is stale or lands on a canceled task either way. */
export function quietRevoke(dispatcher: Dispatcher, logger: Logger | undefined): LedgerContext["revoke"] {
  return async (r, queued = []) => {
    try {
      await dispatcher.revoke(r.teamId, r.jobId, r.taskIds, r.reason, queued);
    } catch (err) {
      logger?.warn({ err, jobId: r.jobId }, "revoking leases failed");
    }
  };
}
