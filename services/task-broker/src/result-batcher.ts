// Group commit towards job-service: results collected for a few milliseconds (or up to a batch
// size) go out in one ReportResults call, retried with backoff until it succeeds, since a result
// must not be lost. The tasks that became ready are enqueued before anyone is told the batch is
// durable, and acknowledged to job-service in the next call's `dispatched` field.
//
// A task's start that has not left yet when its end comes is folded into the end (TaskCompleted
// or TaskFailed `started`): one result instead of two to encode, validate, apply and answer. Start
// reports can be held back for `startHoldMs` so that short tasks fold more often.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  DispatchAckSchema,
  ReportResultsRequestSchema,
  ResultOutcomeSchema,
  ResultStatus,
  type DispatchAck,
  type ReportResultsRequest,
  type ReportResultsResponse,
  type ResultOutcome,
  type TaskEnvelope,
  type TaskResult,
} from "@corral/proto";
import { UnavailableError } from "@corral/server-kit";
import type { Logger } from "pino";
import type { BrokerMetrics } from "./metrics.js";
import { attemptMember } from "./redis/keys.js";

/** Where results go: job-service's TaskLedgerService.ReportResults, or an in-test ledger. */
export interface Ledger {
  reportResults(request: ReportResultsRequest): Promise<ReportResultsResponse>;
}

export interface ResultBatcherOptions {
  ledger: Ledger;
  brokerId: string;
  windowMs: number;
  batchSize: number;
  /** Acks of ready tasks wait this long for a batch to ride on before going out alone. */
  ackFlushMs: number;
  /** Start reports wait this long for their task's end (default 0: sent like any result). */
  startHoldMs?: number;
  enqueue(tasks: TaskEnvelope[]): Promise<unknown>;
  logger: Logger;
  metrics: BrokerMetrics;
}

export interface ResultBatcher {
  /** Resolves with job-service's outcome once the result is durable there. */
  submit(result: TaskResult): Promise<ResultOutcome>;
  /** Results submitted and not yet answered. */
  readonly pending: number;
  /** Resolves when nothing is pending, or at `deadline` (ms since the epoch). */
  idle(deadline: number): Promise<void>;
  /** Stops retrying: what is still pending fails with UnavailableError. */
  close(): Promise<void>;
}

interface Item {
  result: TaskResult;
  resolve(outcome: ResultOutcome): void;
  reject(err: unknown): void;
  /** A start folded into its end: skipped when its batch is sent, settled with the end. */
  folded?: boolean;
}

interface HeldStart extends Item {
  heldAtMs: number;
}

const retryable = new Set([
  Code.Unavailable,
  Code.DeadlineExceeded,
  Code.ResourceExhausted,
  Code.Aborted,
  Code.Internal,
  Code.Unknown,
  Code.Canceled,
]);

function isRetryable(err: unknown): boolean {
  return !(err instanceof ConnectError) || retryable.has(err.code);
}

export function createResultBatcher(options: ResultBatcherOptions): ResultBatcher {
  const { logger, metrics } = options;
  const holdMs = options.startHoldMs ?? 0;
  let queue: Item[] = [];
  /** Start reports held back, oldest first (a Map keeps insertion order). */
  let held = new Map<string, HeldStart>();
  /** Start reports in `queue`, by attempt, until their batch leaves. */
  const queuedStarts = new Map<string, Item>();
  let holdTimer: NodeJS.Timeout | undefined;
  let acks: DispatchAck[] = [];
  let timer: NodeJS.Timeout | undefined;
  /** The pending timer only flushes acks: a result must not wait for it. */
  let ackTimer = false;
  let flushing: Promise<void> | undefined;
  let inFlight = 0;
  let closed = false;
  const abort = new AbortController();
  const idleWaiters = new Set<() => void>();

  const pendingCount = () => queue.length + held.size + inFlight;

  /** Moves start reports held for `holdMs` into the queue; re-arms the timer for the rest. */
  function releaseHeld() {
    const due = Date.now() - holdMs;
    for (const [key, item] of held) {
      if (item.heldAtMs > due) break;
      held.delete(key);
      queue.push(item);
      queuedStarts.set(key, item);
    }
    if (holdTimer) clearTimeout(holdTimer);
    holdTimer = undefined;
    const oldest = held.values().next();
    if (!oldest.done && !closed) {
      holdTimer = setTimeout(() => {
        holdTimer = undefined;
        releaseHeld();
        schedule();
      }, Math.max(1, oldest.value.heldAtMs + holdMs - Date.now()));
      holdTimer.unref();
    }
  }

  function notifyIdle() {
    if (pendingCount() > 0) return;
    for (const w of idleWaiters) w();
    idleWaiters.clear();
  }

  function schedule() {
    if (timer && ackTimer && queue.length > 0) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (flushing || timer || closed) return;
    if (queue.length >= options.batchSize) {
      flushing = flushLoop();
      return;
    }
    const delay = queue.length > 0 ? options.windowMs : acks.length > 0 ? options.ackFlushMs : -1;
    if (delay < 0) return;
    ackTimer = queue.length === 0;
    timer = setTimeout(() => {
      timer = undefined;
      flushing ??= flushLoop();
    }, delay);
    timer.unref();
  }

  async function sleep(ms: number) {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      t.unref();
      abort.signal.addEventListener("abort", () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Calls `fn` until it succeeds, a non-retryable error, or close. */
  async function persist<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let delay = 50;
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        if (closed) throw new UnavailableError(`broker closed before ${what} succeeded`, { cause: err });
        if (!isRetryable(err)) throw err;
        metrics.ledgerRetries.inc();
        logger.warn({ err, retryInMs: delay }, `${what} failed; retrying`);
        await sleep(delay);
        delay = Math.min(delay * 2, 5_000);
      }
    }
  }

  async function flushOne(): Promise<void> {
    if (held.size > 0) releaseHeld();
    const taken = queue.splice(0, options.batchSize);
    for (const item of taken) if (item.result.outcome.case === "started") queuedStarts.delete(attemptMember(item.result.taskId, item.result.attempt));
    const items = taken.filter((item) => !item.folded);
    const dispatched = acks.splice(0, 100_000);
    inFlight += items.length;
    try {
      const request = create(ReportResultsRequestSchema, {
        results: items.map((i) => i.result),
        brokerId: options.brokerId,
        dispatched,
      });
      let response: ReportResultsResponse;
      try {
        response = await persist("ReportResults", () => options.ledger.reportResults(request));
      } catch (err) {
        if (!closed) acks.unshift(...dispatched);
        for (const item of items) item.reject(err);
        return;
      }
      if (response.ready.length > 0) {
        try {
          await persist("enqueue of ready tasks", () => options.enqueue(response.ready));
          acks.push(...response.ready.map((t) => create(DispatchAckSchema, { taskId: t.taskId, attempt: t.attempt })));
        } catch (err) {
          // job-service's outbox sweeper re-sends what we never acknowledged.
          logger.error({ err, count: response.ready.length }, "could not enqueue ready tasks");
        }
      }
      items.forEach((item, i) => {
        const outcome =
          response.outcomes[i] ??
          create(ResultOutcomeSchema, {
            taskId: item.result.taskId,
            attempt: item.result.attempt,
            status: ResultStatus.APPLIED,
          });
        metrics.results.inc({ outcome: item.result.outcome.case ?? "none", status: ResultStatus[outcome.status] ?? "?" });
        item.resolve(outcome);
      });
    } finally {
      inFlight -= items.length;
    }
  }

  async function flushLoop(): Promise<void> {
    try {
      while (queue.length > 0 || (acks.length > 0 && !closed)) {
        await flushOne();
        // Results that arrived during the call have waited long enough: go again at once.
        if (queue.length === 0) break;
      }
    } finally {
      flushing = undefined;
      notifyIdle();
      schedule();
    }
  }

  return {
    submit(result) {
      if (closed) return Promise.reject(new UnavailableError("the broker is closed"));
      return new Promise<ResultOutcome>((resolve, reject) => {
        if (holdMs > 0 && result.outcome.case === "started") {
          held.set(attemptMember(result.taskId, result.attempt), { result, resolve, reject, heldAtMs: Date.now() });
          if (!holdTimer) releaseHeld();
          return;
        }
        const key = attemptMember(result.taskId, result.attempt);
        const end = result.outcome.case === "completed" || result.outcome.case === "failed" ? result.outcome.value : undefined;
        // The attempt's start, if it has not left yet, travels inside its end.
        const start = end && !end.started ? (held.get(key) ?? queuedStarts.get(key)) : undefined;
        if (end && start && start.result.outcome.case === "started") {
          held.delete(key);
          queuedStarts.delete(key);
          start.folded = true;
          end.started = start.result.outcome.value;
          queue.push({
            result,
            resolve: (outcome) => {
              start.resolve(outcome);
              resolve(outcome);
            },
            reject: (err) => {
              start.reject(err);
              reject(err);
            },
          });
        } else {
          const item: Item = { result, resolve, reject };
          queue.push(item);
          if (result.outcome.case === "started") queuedStarts.set(key, item);
        }
        if (queue.length >= options.batchSize && timer) {
          clearTimeout(timer);
          timer = undefined;
        }
        schedule();
      });
    },
    get pending() {
      return pendingCount();
    },
    idle(deadline) {
      if (pendingCount() === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          idleWaiters.delete(done);
          resolve();
        };
        const t = setTimeout(done, Math.max(0, deadline - Date.now()));
        idleWaiters.add(done);
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      abort.abort();
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (holdTimer) clearTimeout(holdTimer);
      holdTimer = undefined;
      // An in-flight call settles on its own; what never left is failed now.
      const left = [...queue.filter((item) => !item.folded), ...held.values()];
      queue = [];
      held = new Map();
      queuedStarts.clear();
      for (const item of left) item.reject(new UnavailableError("the broker closed before the result was reported"));
      notifyIdle();
    },
  };
}
