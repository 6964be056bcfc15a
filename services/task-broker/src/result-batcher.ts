// Group commit towards job-service: results collected for a few milliseconds (or up to a batch
// size) go out in one ReportResults call, retried with backoff while job-service is unreachable,
// since a result must not be lost. The tasks that became ready are enqueued before anyone is told
// the batch is durable, and acknowledged to job-service in the next call's `dispatched` field.
//
// A batch job-service refuses (INVALID_ARGUMENT, or INTERNAL that persists) is split in halves
// until the entries it refuses stand alone: each of those fails its task with a clear error (the
// runner still gets its Ack) and the rest are applied. One bad entry among N costs O(log N) calls,
// so a poison result never holds up the results behind it.
//
// Results travel in lanes (one per cluster, so one team's results never share a lane with another
// team's): each lane has at most one call in flight, and a call takes results round-robin from the
// lanes that have none, up to `batchSize` results and `maxSubtasksPerCall` subtasks (a result with
// more travels alone). Up to `maxCalls` calls are in flight, so one team's fan-out of 10,000
// subtasks, applied and enqueued in its own call, does not hold up another team's results; a task's
// results keep their order because its lane sends them one call at a time.
//
// A task's start that has not left yet when its end comes is folded into the end (TaskCompleted
// or TaskFailed `started`): one result instead of two to encode, validate, apply and answer. Start
// reports can be held back for `startHoldMs` so that short tasks fold more often.
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  DispatchAckSchema,
  ReportResultsRequestSchema,
  ResultOutcomeSchema,
  ResultStatus,
  TaskResultSchema,
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
  /**
   * Bytes of outputs, inputs and errors per ReportResults call (default 4 MiB): results may carry
   * outputs of a megabyte each, and a call must stay under the message limit (8 MiB by default).
   */
  batchBytes?: number;
  /** Acks of ready tasks wait this long for a batch to ride on before going out alone. */
  ackFlushMs: number;
  /** Start reports wait this long for their task's end (default 0: sent like any result). */
  startHoldMs?: number;
  enqueue(tasks: TaskEnvelope[]): Promise<unknown>;
  logger: Logger;
  metrics: BrokerMetrics;
  /** ReportResults calls in flight at once, each for other lanes (default 4). */
  maxCalls?: number;
  /** Subtasks one call carries at most, unless a single result has more (default 2,000). */
  maxSubtasksPerCall?: number;
  /** Results pending with no delivery for this long count as stalled (default 30 s). */
  stallTimeoutMs?: number;
  /** Called when results start or stop being stalled. */
  onStallChange?(stalled: boolean): void;
}

export interface ResultBatcher {
  /**
   * Resolves with job-service's outcome once the result is durable there. `lane` (the cluster's
   * id) keeps teams apart: a task's results must always name the same lane.
   */
  submit(result: TaskResult, lane?: string): Promise<ResultOutcome>;
  /** Results submitted and not yet answered. */
  readonly pending: number;
  /** Results are pending and none was delivered for longer than the stall timeout. */
  readonly stalled: boolean;
  /** Resolves when nothing is pending, or at `deadline` (ms since the epoch). */
  idle(deadline: number): Promise<void>;
  /** Stops retrying: what is still pending fails with UnavailableError. */
  close(): Promise<void>;
}

interface Item {
  result: TaskResult;
  lane: string;
  resolve(outcome: ResultOutcome): void;
  reject(err: unknown): void;
  /** A start folded into its end: skipped when its batch is sent, settled with the end. */
  folded?: boolean;
}

interface HeldStart extends Item {
  heldAtMs: number;
}

/**
 * How a failed call is answered. `transient`: job-service is unreachable or misconfigured, which
 * no entry causes; retried with backoff for as long as it takes. `suspect`: may be a passing fault
 * or an entry it cannot apply; retried a few times, then split. `refused`: the request itself is
 * wrong; split at once.
 */
type Failure = "transient" | "suspect" | "refused";

const transient = new Set([
  Code.Unavailable,
  Code.DeadlineExceeded,
  Code.Aborted,
  Code.Canceled,
  Code.Unauthenticated,
  Code.PermissionDenied,
  Code.Unimplemented,
]);
const suspect = new Set([Code.Internal, Code.Unknown, Code.ResourceExhausted, Code.DataLoss]);

export function classifyFailure(err: unknown): Failure {
  if (!(err instanceof ConnectError)) return "transient";
  if (transient.has(err.code)) return "transient";
  return suspect.has(err.code) ? "suspect" : "refused";
}

/** Subtasks a result adds, which is what makes its call long. */
function subtaskCount(result: TaskResult): number {
  return result.outcome.case === "completed" ? result.outcome.value.subtasks.length : 0;
}

/** Calls of a whole batch that fails with a suspect code before it is split. */
const suspectAttempts = 3;

/** Why an entry was not stored, for the task's error: no text of the entry itself, and bounded. */
export function refusalMessage(err: unknown): string {
  const e = ConnectError.from(err);
  const why = e.rawMessage.replaceAll("\0", "").slice(0, 500);
  return `the task's result could not be stored: job-service refused it (${Code[e.code] ?? e.code}: ${why})`;
}

const DEFAULT_BATCH_BYTES = 4 * 1024 * 1024;

/** Roughly what a result weighs on the wire: its output, its subtasks' inputs, its error. */
export function resultBytes(r: TaskResult): number {
  let n = 128;
  const o = r.outcome;
  if (o.case === "completed") {
    n += o.value.output?.data.length ?? 0;
    for (const s of o.value.subtasks) n += 64 + s.input.length;
  } else if (o.case === "failed") n += o.value.error.length;
  return n;
}

export function createResultBatcher(options: ResultBatcherOptions): ResultBatcher {
  const { logger, metrics } = options;
  const holdMs = options.startHoldMs ?? 0;
  const batchBytes = options.batchBytes ?? DEFAULT_BATCH_BYTES;
  const maxCalls = Math.max(1, options.maxCalls ?? 4);
  const maxSubtasks = options.maxSubtasksPerCall ?? 2_000;
  /** Results waiting to leave, per lane; the map's order is the round-robin order. */
  let lanes = new Map<string, Item[]>();
  let queued = 0;
  /** Lanes with a call in flight. */
  const busy = new Set<string>();
  let calls = 0;
  /** Start reports held back, oldest first (a Map keeps insertion order). */
  let held = new Map<string, HeldStart>();
  /** Start reports in `lanes`, by attempt, until their batch leaves. */
  const queuedStarts = new Map<string, Item>();
  let holdTimer: NodeJS.Timeout | undefined;
  let acks: DispatchAck[] = [];
  let timer: NodeJS.Timeout | undefined;
  /** The pending timer only flushes acks: a result must not wait for it. */
  let ackTimer = false;
  let inFlight = 0;
  let closed = false;
  const abort = new AbortController();
  const idleWaiters = new Set<() => void>();
  const stallTimeoutMs = options.stallTimeoutMs ?? 30_000;
  /** When a ReportResults call last succeeded, and when results last started to be pending. */
  let deliveredAtMs = 0;
  let busySinceMs = 0;
  let stalled = false;
  let stallTimer: NodeJS.Timeout | undefined;

  const pendingCount = () => queued + held.size + inFlight;

  function push(item: Item) {
    const lane = lanes.get(item.lane);
    if (lane) lane.push(item);
    else lanes.set(item.lane, [item]);
    queued++;
  }

  /** Results that could leave now: those of lanes without a call in flight. */
  function sendable(): number {
    let n = 0;
    for (const [key, items] of lanes) if (!busy.has(key)) n += items.length;
    return n;
  }

  /** Re-evaluates the stall state, and wakes up again when it would change without a call. */
  function watchStall() {
    if (stallTimer) clearTimeout(stallTimer);
    stallTimer = undefined;
    const since = Math.max(deliveredAtMs, busySinceMs);
    const now = Date.now();
    const isStalled = pendingCount() > 0 && now - since > stallTimeoutMs;
    if (isStalled !== stalled) {
      stalled = isStalled;
      if (isStalled) logger.error({ pending: pendingCount(), sinceMs: now - since }, "results are not being delivered to job-service");
      else logger.info("results are delivered again");
      options.onStallChange?.(isStalled);
    }
    if (!isStalled && pendingCount() > 0 && !closed) {
      stallTimer = setTimeout(watchStall, since + stallTimeoutMs - now + 1);
      stallTimer.unref();
    }
  }

  /** Moves start reports held for `holdMs` into the queue; re-arms the timer for the rest. */
  function releaseHeld() {
    const due = Date.now() - holdMs;
    for (const [key, item] of held) {
      if (item.heldAtMs > due) break;
      held.delete(key);
      push(item);
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

  function clearTimer() {
    if (timer) clearTimeout(timer);
    timer = undefined;
  }

  /**
   * Starts calls when results can leave: at once when `now` (a call just ended: what came meanwhile
   * has waited long enough) or a batch is full, else after the window. Acks alone wait longer.
   */
  function schedule(now = false) {
    if (closed) return;
    const ready = calls < maxCalls ? sendable() : 0;
    if (ready > 0) {
      if (now || ready >= options.batchSize) {
        clearTimer();
        startCalls();
        return;
      }
      if (timer && !ackTimer) return;
      clearTimer();
      ackTimer = false;
      timer = setTimeout(() => {
        timer = undefined;
        startCalls();
      }, options.windowMs);
      timer.unref();
      return;
    }
    if (timer || calls > 0 || acks.length === 0) return;
    ackTimer = true;
    timer = setTimeout(() => {
      timer = undefined;
      startCalls();
    }, options.ackFlushMs);
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

  /**
   * Calls `fn` until it succeeds, or fails in a way retrying does not mend (a `refused` error, or a
   * `suspect` one `attempts` times): that error is returned. Throws only when the batcher closes.
   */
  async function persist<T>(what: string, fn: () => Promise<T>, attempts = Infinity): Promise<{ ok: T } | { failed: unknown }> {
    let delay = 50;
    for (let attempt = 1; ; attempt++) {
      try {
        return { ok: await fn() };
      } catch (err) {
        if (closed) throw new UnavailableError(`broker closed before ${what} succeeded`, { cause: err });
        const failure = classifyFailure(err);
        if (failure === "refused" || (failure === "suspect" && attempt >= attempts)) return { failed: err };
        metrics.ledgerRetries.inc();
        logger.warn({ err, retryInMs: delay }, `${what} failed; retrying`);
        await sleep(delay);
        delay = Math.min(delay * 2, 5_000);
      }
    }
  }

  async function report(results: TaskResult[], dispatched: DispatchAck[], attempts: number) {
    const request = create(ReportResultsRequestSchema, { results, brokerId: options.brokerId, dispatched });
    const sent = await persist("ReportResults", () => options.ledger.reportResults(request), attempts);
    if ("ok" in sent) {
      deliveredAtMs = Date.now();
      if (stalled) watchStall();
    }
    return sent;
  }

  /** Enqueues what became ready, then answers each item with its outcome. */
  async function settle(items: Item[], response: ReportResultsResponse): Promise<void> {
    if (response.ready.length > 0) {
      const enqueued = await persist("enqueue of ready tasks", () => options.enqueue(response.ready)).catch((err: unknown) => ({ failed: err }));
      if ("ok" in enqueued) {
        acks.push(...response.ready.map((t) => create(DispatchAckSchema, { taskId: t.taskId, attempt: t.attempt })));
      } else {
        // job-service's outbox sweeper re-sends what we never acknowledged.
        logger.error({ err: enqueued.failed, count: response.ready.length }, "could not enqueue ready tasks");
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
  }

  /**
   * Makes `items` durable. What job-service refuses is halved until each refused entry stands
   * alone; inside a split a suspect error is not retried, so the split stays quick. Throws only
   * when the batcher closes.
   */
  async function deliver(items: Item[], dispatched: DispatchAck[], attempts: number): Promise<void> {
    const sent = await report(
      items.map((i) => i.result),
      dispatched,
      attempts,
    );
    if ("ok" in sent) return settle(items, sent.ok);
    const err = sent.failed;
    if (items.length === 0) {
      // Only acks, refused: the outbox sweeper sends those tasks again, and the broker drops the copies.
      logger.error({ err, count: dispatched.length }, "job-service refused dispatch acknowledgements");
      return;
    }
    if (items.length > 1) {
      metrics.resultSplits.inc();
      logger.warn({ err, count: items.length }, "job-service refused a result batch; splitting it to find the entries it refuses");
      const half = Math.ceil(items.length / 2);
      await deliver(items.slice(0, half), dispatched, 1);
      await deliver(items.slice(half), [], 1);
      return;
    }
    await refuse(items[0]!, err, dispatched);
  }

  /**
   * One entry job-service will not apply. A suspect error counts as the entry's only once an empty
   * call shows job-service applies batches: otherwise it is an outage, and the entry waits for it.
   */
  async function refuse(item: Item, err: unknown, dispatched: DispatchAck[]): Promise<void> {
    let failure = err;
    let delay = 50;
    while (classifyFailure(failure) === "suspect") {
      const probe = await report([], dispatched, 1);
      if ("ok" in probe) {
        dispatched = [];
        break;
      }
      logger.warn({ err: failure, retryInMs: delay }, "job-service fails even an empty batch; retrying the result");
      await sleep(delay);
      if (closed) throw new UnavailableError("broker closed before ReportResults succeeded", { cause: failure });
      delay = Math.min(delay * 2, 5_000);
      const again = await report([item.result], dispatched, 1);
      if ("ok" in again) return settle([item], again.ok);
      failure = again.failed;
    }
    if (dispatched.length > 0) acks.unshift(...dispatched);
    const reason = refusalMessage(failure);
    metrics.resultsRefused.inc();
    logger.error({ err: failure, task: item.result.taskId, attempt: item.result.attempt }, "job-service refused a result; failing its task");
    const outcome = create(ResultOutcomeSchema, {
      taskId: item.result.taskId,
      attempt: item.result.attempt,
      status: ResultStatus.INVALID,
      reason,
    });
    // The attempt ends failed in its place (a lease expiry carries nothing to refuse but is answered too).
    if (item.result.outcome.case !== "expired") {
      const failed = create(TaskResultSchema, {
        taskId: item.result.taskId,
        attempt: item.result.attempt,
        outcome: { case: "failed", value: { error: reason, countsAsRetry: true, unrecoverable: true, stopTime: timestampNow() } },
      });
      const sent = await report([failed], [], suspectAttempts);
      if ("ok" in sent) {
        outcome.canceled = sent.ok.outcomes[0]?.canceled ?? false;
        if (sent.ok.ready.length > 0) await settle([], sent.ok);
      } else {
        logger.error({ err: sent.failed, task: item.result.taskId }, "job-service refused even the failure of a task whose result it refused");
      }
    }
    metrics.results.inc({ outcome: item.result.outcome.case ?? "none", status: "INVALID" });
    item.resolve(outcome);
  }

  /**
   * The next call's results: round-robin over the lanes without a call in flight, each lane's
   * results in order, up to `batchSize` results, `batchBytes` bytes and `maxSubtasks` subtasks (a
   * bigger result alone).
   */
  function takeBatch(): { items: Item[]; lanes: string[] } {
    const taken: Item[] = [];
    const from: string[] = [];
    let subtasks = 0;
    let bytes = 0;
    for (const [key, items] of [...lanes]) {
      if (busy.has(key)) continue;
      let n = 0;
      for (const item of items) {
        if (taken.length >= options.batchSize) break;
        const size = item.folded ? 0 : subtaskCount(item.result);
        if (size > 0 && subtasks + size > maxSubtasks && taken.length > 0) break;
        const itemBytes = item.folded ? 0 : resultBytes(item.result);
        if (taken.length > 0 && bytes + itemBytes > batchBytes) break;
        taken.push(item);
        n++;
        subtasks += size;
        bytes += itemBytes;
        if (subtasks >= maxSubtasks) break;
      }
      if (n === 0) break;
      from.push(key);
      items.splice(0, n);
      queued -= n;
      // A lane served goes to the back of the round.
      lanes.delete(key);
      if (items.length > 0) lanes.set(key, items);
      if (taken.length >= options.batchSize || subtasks >= maxSubtasks || bytes >= batchBytes || items.length > 0) break;
    }
    return { items: taken, lanes: from };
  }

  function startCalls() {
    if (held.size > 0) releaseHeld();
    while (calls < maxCalls && !closed) {
      const next = takeBatch();
      if (next.items.length === 0) {
        if (acks.length > 0 && calls === 0) void runCall([], []);
        return;
      }
      void runCall(next.items, next.lanes);
    }
  }

  async function runCall(taken: Item[], from: string[]): Promise<void> {
    calls++;
    for (const key of from) busy.add(key);
    for (const item of taken) if (item.result.outcome.case === "started") queuedStarts.delete(attemptMember(item.result.taskId, item.result.attempt));
    const items = taken.filter((item) => !item.folded);
    const dispatched = acks.splice(0, 100_000);
    inFlight += items.length;
    // Every item is answered once, whichever way the split goes; on close the rest fail.
    const open = new Set(items);
    const tracked = items.map((item) => ({
      ...item,
      resolve: (o: ResultOutcome) => (open.delete(item) ? item.resolve(o) : undefined),
      reject: (e: unknown) => (open.delete(item) ? item.reject(e) : undefined),
    }));
    try {
      await deliver(tracked, dispatched, suspectAttempts);
    } catch (err) {
      for (const item of open) item.reject(err);
      open.clear();
    } finally {
      inFlight -= items.length;
      calls--;
      for (const key of from) busy.delete(key);
      notifyIdle();
      schedule(true);
      watchStall();
    }
  }

  return {
    submit(result, lane = "") {
      if (closed) return Promise.reject(new UnavailableError("the broker is closed"));
      if (pendingCount() === 0) busySinceMs = Date.now();
      const answer = new Promise<ResultOutcome>((resolve, reject) => {
        if (holdMs > 0 && result.outcome.case === "started") {
          held.set(attemptMember(result.taskId, result.attempt), { result, lane, resolve, reject, heldAtMs: Date.now() });
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
          push({
            result,
            lane,
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
          const item: Item = { result, lane, resolve, reject };
          push(item);
          if (result.outcome.case === "started") queuedStarts.set(key, item);
        }
        schedule();
      });
      if (!stallTimer && !stalled) watchStall();
      return answer;
    },
    get pending() {
      return pendingCount();
    },
    get stalled() {
      return stalled;
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
      if (stallTimer) clearTimeout(stallTimer);
      stallTimer = undefined;
      // An in-flight call settles on its own; what never left is failed now.
      const left = [...[...lanes.values()].flat().filter((item) => !item.folded), ...held.values()];
      lanes = new Map();
      queued = 0;
      held = new Map();
      queuedStarts.clear();
      for (const item of left) item.reject(new UnavailableError("the broker closed before the result was reported"));
      notifyIdle();
    },
  };
}
