// Presence reports on their way to the registry: the latest report of each session, sent together
// a moment after the first one queues (so a burst of changes costs one ReportPresence), in calls of
// at most `maxPerCall` reports, one call after the other. Every call names this broker process
// (its instance), which also tells the registry the process is alive; `beat()` sends a call with
// no reports for that alone. A call that fails for a passing reason (registry unavailable, timeout)
// is tried again after a growing pause, with each session's report unless a newer one is queued;
// a report the registry refuses is logged and dropped, and the rest of its call sent without it.
import { Code, ConnectError } from "@connectrpc/connect";
import type { PresenceReport } from "@corral/proto";
import type { Logger } from "pino";

export interface PresenceReporter {
  /** Answers whether the registry keeps nodes alive through `brokerInstance` (one that predates it does not). */
  report(reports: PresenceReport[], brokerInstance: string): Promise<{ keepsInstances: boolean }>;
}

export interface ReportOutbox {
  /** Replaces what `sessionId` has queued; the batch leaves after the coalescing delay. */
  put(sessionId: string, report: PresenceReport): void;
  /** Tells the registry this process is alive (with the next call, or a call of its own). */
  beat(): void;
  /** Sends what is queued now; resolves once every call so far has been answered. */
  flush(): Promise<void>;
  /**
   * Every call answered since the last time this was asked was answered by a registry that keeps
   * nodes alive through this broker's instance (true when none was answered).
   */
  keptSinceAsked(): boolean;
  /** Stops retrying; what is queued stays unsent. */
  close(): void;
}

/** Reports per ReportPresence call: with 100 running tasks each, a call stays around a megabyte. */
export const MAX_REPORTS_PER_CALL = 200;

/** Splits `reports` into calls of at most `size`. */
export function callsOf<T>(reports: readonly T[], size = MAX_REPORTS_PER_CALL): T[][] {
  const calls: T[][] = [];
  for (let i = 0; i < reports.length; i += size) calls.push(reports.slice(i, i + size));
  return calls;
}

/**
 * Errors worth another try: the registry or the way to it is passing through trouble (a registry
 * whose database is down answers UNAVAILABLE). Anything else, INTERNAL included, is about the
 * reports: the call is split to find the one at fault.
 */
const PASSING = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.ResourceExhausted, Code.Aborted, Code.Unknown]);

export function isPassing(err: unknown): boolean {
  return PASSING.has(ConnectError.from(err).code);
}

/** The pause before retry `n` (1, 2, ...): 1 s doubling up to 30 s. */
export function retryDelayMs(n: number): number {
  return Math.min(30_000, 1_000 * 2 ** Math.max(0, n - 1));
}

export function createReportOutbox(options: {
  reporter: PresenceReporter;
  brokerInstance: string;
  logger: Logger;
  delayMs?: number;
  maxPerCall?: number;
}): ReportOutbox {
  const { reporter, logger, brokerInstance } = options;
  const delayMs = options.delayMs ?? 20;
  const queued = new Map<string, PresenceReport>();
  let beatWanted = false;
  let kept = true;
  let failures = 0;
  /** Which flush each call came from; the calls after a failed one in the same flush wait with it. */
  let generation = 0;
  let failedGeneration = -1;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let sending: Promise<void> = Promise.resolve();

  const schedule = (ms: number) => {
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void outbox.flush();
    }, ms);
    timer.unref?.();
  };

  /** The next flush: after the coalescing delay, or the retry pause while calls are failing. */
  const scheduleNext = () => schedule(failures === 0 ? delayMs : retryDelayMs(failures));

  /** Puts an unsent call's reports back, except where the session has queued a newer one. */
  const putBack = (batch: Array<[string, PresenceReport]>) => {
    for (const [sessionId, report] of batch) if (!queued.has(sessionId)) queued.set(sessionId, report);
  };

  /** A call failed for a passing reason: its reports and a beat go with the next try. */
  const requeue = (batch: Array<[string, PresenceReport]>) => {
    putBack(batch);
    beatWanted = true;
    failures++;
    scheduleNext();
  };

  const send = async (batch: Array<[string, PresenceReport]>, gen: number) => {
    if (gen === failedGeneration) {
      // The registry just failed this flush's earlier call: no need to ask again now.
      putBack(batch);
      return;
    }
    try {
      const answer = await reporter.report(
        batch.map(([, r]) => r),
        brokerInstance,
      );
      kept &&= answer.keepsInstances;
      failures = 0;
      // What was queued while a retry was on its way waits no longer than a fresh report.
      if (queued.size > 0 || beatWanted) schedule(delayMs);
    } catch (err) {
      if (closed) return;
      if (isPassing(err)) {
        logger.warn({ err, count: batch.length, retry: failures + 1 }, "presence report failed; trying again");
        failedGeneration = gen;
        requeue(batch);
      } else if (batch.length > 1) {
        // One report the registry refuses must not cost the others: halve until it stands alone.
        const half = batch.length >> 1;
        await send(batch.slice(0, half), gen);
        await send(batch.slice(half), gen);
      } else {
        logger.warn({ err, sessionId: batch[0]?.[0] }, "presence report refused; dropped");
      }
    }
  };

  const outbox: ReportOutbox = {
    put(sessionId, report) {
      queued.set(sessionId, report);
      scheduleNext();
    },
    beat() {
      beatWanted = true;
      scheduleNext();
    },
    flush() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (queued.size === 0 && !beatWanted) return sending;
      const calls = queued.size === 0 ? [[]] : callsOf([...queued.entries()], options.maxPerCall);
      queued.clear();
      beatWanted = false;
      const gen = ++generation;
      for (const batch of calls) sending = sending.then(() => send(batch, gen));
      return sending;
    },
    keptSinceAsked() {
      const all = kept;
      kept = true;
      return all;
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
  return outbox;
}
