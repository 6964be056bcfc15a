// Presence reports on their way to the registry: the latest report of each session, sent together
// a moment after the first one queues (so a burst of changes costs one ReportPresence), in calls of
// at most `maxPerCall` reports, one call after the other. Best effort: a failed call is logged and
// dropped, the next report of each session carries its state.
import type { PresenceReport } from "@corral/proto";
import type { Logger } from "pino";

export interface PresenceReporter {
  report(reports: PresenceReport[]): Promise<void>;
}

export interface ReportOutbox {
  /** Replaces what `sessionId` has queued; the batch leaves after the coalescing delay. */
  put(sessionId: string, report: PresenceReport): void;
  /** Sends what is queued now; resolves once every call so far has been answered. */
  flush(): Promise<void>;
}

/** Reports per ReportPresence call: with 100 running tasks each, a call stays around a megabyte. */
export const MAX_REPORTS_PER_CALL = 200;

/** Splits `reports` into calls of at most `size`. */
export function callsOf<T>(reports: readonly T[], size = MAX_REPORTS_PER_CALL): T[][] {
  const calls: T[][] = [];
  for (let i = 0; i < reports.length; i += size) calls.push(reports.slice(i, i + size));
  return calls;
}

export function createReportOutbox(options: { reporter: PresenceReporter; logger: Logger; delayMs?: number; maxPerCall?: number }): ReportOutbox {
  const { reporter, logger } = options;
  const queued = new Map<string, PresenceReport>();
  let timer: NodeJS.Timeout | undefined;
  let sending: Promise<void> = Promise.resolve();

  const outbox: ReportOutbox = {
    put(sessionId, report) {
      queued.set(sessionId, report);
      timer ??= setTimeout(() => {
        timer = undefined;
        void outbox.flush();
      }, options.delayMs ?? 20);
      timer.unref?.();
    },
    flush() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (queued.size === 0) return sending;
      const calls = callsOf([...queued.values()], options.maxPerCall);
      queued.clear();
      for (const batch of calls) {
        sending = sending
          .then(() => reporter.report(batch))
          .catch((err: unknown) => logger.warn({ err, count: batch.length }, "presence report failed"));
      }
      return sending;
    },
  };
  return outbox;
}
