// Group commit towards job-service: results collected for a few milliseconds (or up to a batch
// size) go out in one ReportResults call, made durable by result-batching/delivery.ts (retried
// while job-service is unreachable, split around the entries it refuses). The tasks that became
// ready are enqueued before anyone is told the batch is durable, and acknowledged to job-service in
// the next call's `dispatched` field (result-batching/dispatch-acks.ts).
//
// Results travel in lanes (one per cluster, so one team's results never share a lane with another
// team's; result-batching/lanes.ts): each lane has at most one call in flight, and a call takes
// results round-robin from the lanes that have none, up to `batchSize` results and
// `maxSubtasksPerCall` subtasks (a result with more travels alone). Up to `maxCalls` calls are in
// flight, so one team's fan-out does not hold up another team's results; a task's results keep
// their order because its lane sends them one call at a time.
//
// A task's start that has not left yet when its end comes is folded into the end
// (result-batching/start-hold.ts). This module decides when calls start and who is answered.
import type { ResultOutcome, TaskEnvelope, TaskResult } from "@corral/proto";
import { UnavailableError } from "@corral/server-kit";
import type { Logger } from "pino";
import { DeadlineWaiters } from "./deadline-waiters.js";
import type { BrokerMetrics } from "./metrics.js";
import { attemptMember } from "./redis/keys.js";
import { deliver, type Delivery, type Ledger } from "./result-batching/delivery.js";
import { DispatchAcks } from "./result-batching/dispatch-acks.js";
import { ResultLanes, type BatchLimits, type Item } from "./result-batching/lanes.js";
import { StallWatch } from "./result-batching/stall-watch.js";
import { StartHold } from "./result-batching/start-hold.js";

export type { Ledger } from "./result-batching/delivery.js";

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

const DEFAULT_BATCH_BYTES = 4 * 1024 * 1024;

export function createResultBatcher(options: ResultBatcherOptions): ResultBatcher {
  return new LanedResultBatcher(options);
}

/** The end of an attempt (completed or failed) that its start may travel in, if it has none yet. */
function endWithoutStart(result: TaskResult) {
  const o = result.outcome;
  const end = o.case === "completed" || o.case === "failed" ? o.value : undefined;
  return end && !end.started ? end : undefined;
}

/**
 * `start` and `end` answered together: the start's item settles with its end's. (Classes, not
 * object literals of closures: one of each is made per result.)
 */
class FoldedPair implements Item {
  readonly result: TaskResult;
  readonly lane: string;
  readonly #end: Item;
  readonly #start: Item;

  constructor(end: Item, start: Item) {
    this.result = end.result;
    this.lane = end.lane;
    this.#end = end;
    this.#start = start;
  }

  resolve(outcome: ResultOutcome): void {
    this.#start.resolve(outcome);
    this.#end.resolve(outcome);
  }

  reject(err: unknown): void {
    this.#start.reject(err);
    this.#end.reject(err);
  }
}

/** An item answered at most once, whichever way a split goes; `open` holds those not answered. */
class AnsweredOnce implements Item {
  readonly result: TaskResult;
  readonly lane: string;
  readonly #item: Item;
  readonly #open: Set<Item>;

  constructor(item: Item, open: Set<Item>) {
    this.result = item.result;
    this.lane = item.lane;
    this.#item = item;
    this.#open = open;
  }

  resolve(outcome: ResultOutcome): void {
    if (this.#open.delete(this.#item)) this.#item.resolve(outcome);
  }

  reject(err: unknown): void {
    if (this.#open.delete(this.#item)) this.#item.reject(err);
  }
}

/** `items` answered at most once each, whichever way a split goes; `open` holds those not answered. */
function answeredOnce(items: Item[]): { tracked: Item[]; open: Set<Item> } {
  const open = new Set(items);
  return { tracked: items.map((item) => new AnsweredOnce(item, open)), open };
}

class LanedResultBatcher implements ResultBatcher {
  readonly #options: ResultBatcherOptions;
  readonly #limits: BatchLimits;
  readonly #maxCalls: number;
  readonly #lanes = new ResultLanes();
  readonly #starts: StartHold;
  readonly #acks = new DispatchAcks();
  readonly #stall: StallWatch;
  readonly #delivery: Delivery;
  readonly #abort = new AbortController();
  readonly #idleWaiters = new DeadlineWaiters();
  /** Calls in flight, and the results they carry. */
  #calls = 0;
  #inFlight = 0;
  #timer: NodeJS.Timeout | undefined;
  /** The pending timer only flushes acks: a result must not wait for it. */
  #ackTimer = false;
  #closed = false;

  constructor(options: ResultBatcherOptions) {
    this.#options = options;
    this.#limits = {
      batchSize: options.batchSize,
      batchBytes: options.batchBytes ?? DEFAULT_BATCH_BYTES,
      maxSubtasks: options.maxSubtasksPerCall ?? 2_000,
    };
    this.#maxCalls = Math.max(1, options.maxCalls ?? 4);
    this.#starts = new StartHold(options.startHoldMs ?? 0, () => {
      this.#releaseHeld();
      this.#schedule();
    });
    this.#stall = new StallWatch({
      timeoutMs: options.stallTimeoutMs ?? 30_000,
      pending: () => this.pending,
      logger: options.logger,
      onChange: options.onStallChange,
    });
    this.#delivery = {
      ledger: options.ledger,
      brokerId: options.brokerId,
      enqueue: options.enqueue,
      acks: this.#acks,
      logger: options.logger,
      metrics: options.metrics,
      delivered: () => this.#stall.delivered(Date.now()),
      closed: () => this.#closed,
      sleep: (ms) => this.#sleep(ms),
    };
  }

  get pending(): number {
    return this.#lanes.queued + this.#starts.held + this.#inFlight;
  }

  get stalled(): boolean {
    return this.#stall.stalled;
  }

  submit(result: TaskResult, lane = ""): Promise<ResultOutcome> {
    if (this.#closed) return Promise.reject(new UnavailableError("the broker is closed"));
    if (this.pending === 0) this.#stall.busyFrom(Date.now());
    const answer = new Promise<ResultOutcome>((resolve, reject) => this.#accept({ result, lane, resolve, reject }));
    this.#stall.watch();
    return answer;
  }

  idle(deadline: number): Promise<void> {
    return this.#idleWaiters.wait(this.pending === 0, deadline);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    this.#clearTimer();
    this.#stall.close();
    // An in-flight call settles on its own; what never left is failed now.
    const left = [...this.#lanes.drain().filter((item) => !item.folded), ...this.#starts.close()];
    for (const item of left) item.reject(new UnavailableError("the broker closed before the result was reported"));
    this.#notifyIdle();
  }

  /** Queues a result: a start may be held back; an end takes its start along if it has not left. */
  #accept(item: Item): void {
    const { result } = item;
    const key = attemptMember(result.taskId, result.attempt);
    if (this.#starts.holds && result.outcome.case === "started") return this.#starts.hold(key, item, Date.now());
    const end = endWithoutStart(result);
    const start = end ? this.#starts.takeStart(key) : undefined;
    if (end && start && start.result.outcome.case === "started") {
      start.folded = true;
      end.started = start.result.outcome.value;
      this.#lanes.push(new FoldedPair(item, start));
    } else {
      this.#lanes.push(item);
      if (result.outcome.case === "started") this.#starts.queued(key, item);
    }
    this.#schedule();
  }

  #releaseHeld(): void {
    for (const item of this.#starts.releaseDue(Date.now())) this.#lanes.push(item);
  }

  /**
   * Starts calls when results can leave: at once when `now` (a call just ended: what came meanwhile
   * has waited long enough) or a batch is full, else after the window. Acks alone wait longer.
   */
  #schedule(now = false): void {
    if (this.#closed) return;
    const ready = this.#calls < this.#maxCalls ? this.#lanes.sendable() : 0;
    if (ready > 0) {
      if (now || ready >= this.#options.batchSize) {
        this.#clearTimer();
        this.#startCalls();
      } else if (!this.#timer || this.#ackTimer) {
        this.#armTimer(this.#options.windowMs, false);
      }
      return;
    }
    if (this.#timer || this.#calls > 0 || this.#acks.size === 0) return;
    this.#armTimer(this.#options.ackFlushMs, true);
  }

  #armTimer(ms: number, acksOnly: boolean): void {
    this.#clearTimer();
    this.#ackTimer = acksOnly;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#startCalls();
    }, ms);
    this.#timer.unref();
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #startCalls(): void {
    if (this.#starts.held > 0) this.#releaseHeld();
    while (this.#calls < this.#maxCalls && !this.#closed) {
      const next = this.#lanes.take(this.#limits);
      if (next.items.length === 0) {
        if (this.#acks.size > 0 && this.#calls === 0) void this.#runCall([], []);
        return;
      }
      void this.#runCall(next.items, next.lanes);
    }
  }

  async #runCall(taken: Item[], from: string[]): Promise<void> {
    this.#calls++;
    for (const item of taken) if (item.result.outcome.case === "started") this.#starts.sent(attemptMember(item.result.taskId, item.result.attempt));
    const items = taken.filter((item) => !item.folded);
    const dispatched = this.#acks.take();
    this.#inFlight += items.length;
    // Every item is answered once, whichever way the split goes; on close the rest fail.
    const { tracked, open } = answeredOnce(items);
    try {
      await deliver(this.#delivery, tracked, dispatched);
    } catch (err) {
      for (const item of open) item.reject(err);
      open.clear();
    } finally {
      this.#inFlight -= items.length;
      this.#calls--;
      this.#lanes.idle(from);
      this.#notifyIdle();
      this.#schedule(true);
      this.#stall.check();
    }
  }

  #notifyIdle(): void {
    if (this.pending === 0) this.#idleWaiters.notify();
  }

  async #sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      t.unref();
      this.#abort.signal.addEventListener("abort", () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
