// The ledger's side of TaskLedgerService: what brokers report (results, live progress, dispatch
// acknowledgements, a Redis that lost its data).
import type { RunningProgress } from "@corral/proto";
import { applyResults, type ApplyResultsInput, type ApplyResultsOutput } from "../domain/apply-results.js";
import type { OutboxKey } from "../domain/ports.js";
import { runningProgressRows } from "../domain/running-progress.js";
import { resyncDispatch } from "../outbox/dispatch-resync.js";
import { writeRunningProgress } from "../store/progress-repository.js";
import type { LedgerContext } from "./ledger-context.js";

export interface BrokerReports {
  /** Applies a broker's batch of results, then revokes the leases it says to. */
  reportResults(input: ApplyResultsInput): Promise<ApplyResultsOutput>;
  /** A broker's Redis lost its data: expire attempts leased before `lostSince`, re-send queued tasks. */
  resyncDispatch(reason: string, lostSince?: Date): Promise<{ expired: number; requeued: number }>;
  /** Progress of running tasks, as reported while they run; returns the entries written. */
  reportProgress(entries: readonly RunningProgress[]): Promise<number>;
  /** The broker has the tasks in its streams: their outbox rows go. */
  acknowledgeDispatch(keys: OutboxKey[]): Promise<number>;
}

/**
 * A ready list at least this long (a fan-out) goes to the brokers from here, in the relay's lanes,
 * rather than in the answer to the reporting broker: its first tasks start while the rest are
 * encoded and sent, instead of after the whole list crossed to the broker in one answer.
 */
export const DIRECT_READY_MIN = 1_000;

export function createBrokerReports(c: LedgerContext): BrokerReports {
  const { db, relay, logger } = c;

  async function reportResults(input: ApplyResultsInput): Promise<ApplyResultsOutput> {
    const { maxInputBytes, maxOpenTasks, maxOutputBytes, now, random } = c;
    let out = await applyResults(c.store, c.clusters, input, { maxInputBytes, maxOpenTasks, maxOutputBytes, now, random });
    // Sent and acknowledged here, or, when a broker did not take them, answered as usual.
    if (out.ready.length >= DIRECT_READY_MIN && (await relay.enqueueEnvelopes(out.ready))) out = { ...out, ready: [] };
    for (const r of out.revocations) await c.revoke(r);
    c.taskMetrics?.observe(out.ended);
    // Not awaited: the broker's answer does not wait for the exporter's queue.
    if (c.spanExport && out.ended.length > 0) void c.spanExport.attempts(out.ended);
    if (c.spanExport && out.stopped.length > 0) void c.spanExport.stopped(out.stopped);
    return out;
  }

  return {
    reportResults,

    reportProgress(entries: readonly RunningProgress[]) {
      return writeRunningProgress(db, runningProgressRows(entries));
    },

    resyncDispatch(reason: string, lostSince?: Date) {
      return resyncDispatch({ db, logger, reportResults, requeueAll: () => relay.requeueAll() }, reason, lostSince);
    },

    acknowledgeDispatch(keys: OutboxKey[]): Promise<number> {
      return relay.acknowledge(keys);
    },
  };
}
