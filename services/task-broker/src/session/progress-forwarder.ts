// Live progress of running tasks: what runners send as TaskProgress on the Work stream, kept per
// task attempt (latest wins) and forwarded to job-service (TaskLedgerService.ReportProgress) in
// one call per flush. Best effort and bounded: progress is a view, the result carries the final
// one, so an update that cannot be delivered is dropped, never retried or queued behind results.
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ReportProgressRequestSchema, RunningProgressSchema, TaskProgress } from "@corral/proto";
import type { Logger } from "pino";
import { attemptMember } from "../redis/keys.js";
import type { RunnerSession } from "../runner-session.js";

/** Where progress goes: job-service's TaskLedgerService.ReportProgress. */
export interface ProgressLedger {
  reportProgress(request: MessageInitShape<typeof ReportProgressRequestSchema>): Promise<unknown>;
}

export interface ProgressForwarderOptions {
  ledger: ProgressLedger | undefined;
  brokerId: string;
  /** Updates wait at most this long for company (default 250 ms). */
  flushMs?: number;
  /** Task attempts with an update pending at most (default 10,000); updates of others wait for the next flush. */
  maxPending?: number;
  logger: Logger;
}

export interface ProgressForwarder {
  /** A runner's progress of a lease its session holds and has not reported a result for; others are dropped. */
  forward(session: RunnerSession, progress: TaskProgress): void;
  /** Sends what is pending and stops taking updates. Idempotent. */
  close(): Promise<void>;
}

type Entry = MessageInitShape<typeof RunningProgressSchema>;

export function createProgressForwarder(options: ProgressForwarderOptions): ProgressForwarder {
  const { ledger, logger } = options;
  const flushMs = options.flushMs ?? 250;
  const maxPending = options.maxPending ?? 10_000;
  let pending = new Map<string, Entry>();
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;
  let closed = false;
  let warned = false;

  async function flush(): Promise<void> {
    timer = undefined;
    if (pending.size === 0 || !ledger) return;
    const tasks = [...pending.values()];
    pending = new Map();
    try {
      await ledger.reportProgress({ tasks, brokerId: options.brokerId });
      warned = false;
    } catch (err) {
      // The next update of each task replaces this one; said once per outage.
      if (!warned) logger.warn({ err, tasks: tasks.length }, "live progress could not be delivered (dropped)");
      warned = true;
    }
  }

  function schedule(): void {
    if (timer || inFlight || closed) return;
    timer = setTimeout(() => {
      inFlight = flush().finally(() => {
        inFlight = undefined;
        if (pending.size > 0) schedule();
      });
    }, flushMs);
    timer.unref?.();
  }

  return {
    forward(session, progress) {
      if (closed || !ledger || !progress.lease) return;
      const member = attemptMember(progress.lease.taskId, progress.lease.attempt);
      const held = session.leases.get(member);
      if (!held || held.reporting) return;
      if (!pending.has(member) && pending.size >= maxPending) return;
      pending.delete(member);
      pending.set(member, { taskId: held.taskId, attempt: held.attempt, progress: progress.progress, display: progress.display });
      schedule();
    },

    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      timer = undefined;
      await inFlight;
      await flush();
    },
  };
}
