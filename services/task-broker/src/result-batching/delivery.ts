// Making a batch of results durable at job-service: one ReportResults call, retried with backoff
// while job-service is unreachable; a batch it refuses is halved until each refused entry stands
// alone, and that entry's task fails in its place. The tasks that became ready are enqueued before
// anyone is told the batch is durable.
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { ReportResultsRequestSchema, ResultOutcomeSchema, ResultStatus, TaskResultSchema } from "@corral/proto";
import type { DispatchAck, ReportResultsRequest, ReportResultsResponse, TaskEnvelope, TaskResult } from "@corral/proto";
import { UnavailableError } from "@corral/server-kit";
import type { Logger } from "pino";
import type { BrokerMetrics } from "../metrics.js";
import type { DispatchAcks } from "./dispatch-acks.js";
import { classifyFailure, nextBackoff, refusalMessage, suspectAttempts } from "./failures.js";
import type { Item } from "./lanes.js";

/** Where results go: job-service's TaskLedgerService.ReportResults, or an in-test ledger. */
export interface Ledger {
  reportResults(request: ReportResultsRequest): Promise<ReportResultsResponse>;
}

/** What delivering needs: the ledger and the enqueue of ready tasks, and the batcher's shared parts. */
export interface Delivery {
  ledger: Ledger;
  brokerId: string;
  enqueue(tasks: TaskEnvelope[]): Promise<unknown>;
  acks: DispatchAcks;
  logger: Logger;
  metrics: BrokerMetrics;
  /** A call succeeded. */
  delivered(): void;
  /** The batcher closed: retries stop. */
  closed(): boolean;
  /** Waits `ms`, or less when the batcher closes. */
  sleep(ms: number): Promise<void>;
}

type Sent<T> = { ok: T } | { failed: unknown };

/**
 * Calls `fn` until it succeeds, or fails in a way retrying does not mend (a `refused` error, or a
 * `suspect` one `attempts` times): that error is returned. Throws only when the batcher closes.
 */
async function persist<T>(d: Delivery, what: string, fn: () => Promise<T>, attempts = Infinity): Promise<Sent<T>> {
  let delay = 50;
  for (let attempt = 1; ; attempt++) {
    try {
      return { ok: await fn() };
    } catch (err) {
      if (d.closed()) throw new UnavailableError(`broker closed before ${what} succeeded`, { cause: err });
      const failure = classifyFailure(err);
      if (failure === "refused" || (failure === "suspect" && attempt >= attempts)) return { failed: err };
      d.metrics.ledgerRetries.inc();
      d.logger.warn({ err, retryInMs: delay }, `${what} failed; retrying`);
      await d.sleep(delay);
      delay = nextBackoff(delay);
    }
  }
}

async function report(d: Delivery, results: TaskResult[], dispatched: DispatchAck[], attempts: number): Promise<Sent<ReportResultsResponse>> {
  const request = create(ReportResultsRequestSchema, { results, brokerId: d.brokerId, dispatched });
  const sent = await persist(d, "ReportResults", () => d.ledger.reportResults(request), attempts);
  if ("ok" in sent) d.delivered();
  return sent;
}

/** Enqueues what became ready, then answers each item with its outcome. */
async function settle(d: Delivery, items: Item[], response: ReportResultsResponse): Promise<void> {
  if (response.ready.length > 0) {
    const enqueued = await persist(d, "enqueue of ready tasks", () => d.enqueue(response.ready)).catch((err: unknown) => ({ failed: err }));
    if ("ok" in enqueued) d.acks.enqueued(response.ready);
    // job-service's outbox sweeper re-sends what we never acknowledged.
    else d.logger.error({ err: enqueued.failed, count: response.ready.length }, "could not enqueue ready tasks");
  }
  items.forEach((item, i) => {
    const outcome =
      response.outcomes[i] ??
      create(ResultOutcomeSchema, { taskId: item.result.taskId, attempt: item.result.attempt, status: ResultStatus.APPLIED });
    d.metrics.results.inc({ outcome: item.result.outcome.case ?? "none", status: ResultStatus[outcome.status] ?? "?" });
    item.resolve(outcome);
  });
}

/**
 * Makes `items` durable. What job-service refuses is halved until each refused entry stands
 * alone; inside a split a suspect error is not retried, so the split stays quick. Throws only
 * when the batcher closes.
 */
export async function deliver(d: Delivery, items: Item[], dispatched: DispatchAck[], attempts = suspectAttempts): Promise<void> {
  const sent = await report(
    d,
    items.map((i) => i.result),
    dispatched,
    attempts,
  );
  if ("ok" in sent) return settle(d, items, sent.ok);
  const err = sent.failed;
  if (items.length === 0) {
    // Only acks, refused: the outbox sweeper sends those tasks again, and the broker drops the copies.
    d.logger.error({ err, count: dispatched.length }, "job-service refused dispatch acknowledgements");
    return;
  }
  if (items.length > 1) {
    d.metrics.resultSplits.inc();
    d.logger.warn({ err, count: items.length }, "job-service refused a result batch; splitting it to find the entries it refuses");
    const half = Math.ceil(items.length / 2);
    await deliver(d, items.slice(0, half), dispatched, 1);
    await deliver(d, items.slice(half), [], 1);
    return;
  }
  await refuse(d, items[0]!, err, dispatched);
}

/**
 * One entry job-service will not apply. A suspect error counts as the entry's only once an empty
 * call shows job-service applies batches: otherwise it is an outage, and the entry waits for it.
 */
async function refuse(d: Delivery, item: Item, err: unknown, dispatched: DispatchAck[]): Promise<void> {
  const probed = await retryWhileSuspect(d, item, err, dispatched);
  if ("settled" in probed) return;
  d.acks.putBack(probed.dispatched);
  const reason = refusalMessage(probed.failure);
  d.metrics.resultsRefused.inc();
  d.logger.error({ err: probed.failure, task: item.result.taskId, attempt: item.result.attempt }, "job-service refused a result; failing its task");
  const outcome = create(ResultOutcomeSchema, { taskId: item.result.taskId, attempt: item.result.attempt, status: ResultStatus.INVALID, reason });
  // The attempt ends failed in its place (a lease expiry carries nothing to refuse but is answered too).
  if (item.result.outcome.case !== "expired") outcome.canceled = await failInPlace(d, item.result, reason);
  d.metrics.results.inc({ outcome: item.result.outcome.case ?? "none", status: "INVALID" });
  item.resolve(outcome);
}

/**
 * While the entry's error is suspect: probes job-service with an empty call; when even that fails
 * it is an outage, so the entry is tried again after a backoff. Answers once the entry settled, or
 * with the failure that is the entry's own (and the acks not delivered yet).
 */
async function retryWhileSuspect(
  d: Delivery,
  item: Item,
  err: unknown,
  dispatched: DispatchAck[],
): Promise<{ settled: true } | { failure: unknown; dispatched: DispatchAck[] }> {
  let failure = err;
  let delay = 50;
  while (classifyFailure(failure) === "suspect") {
    const probe = await report(d, [], dispatched, 1);
    if ("ok" in probe) return { failure, dispatched: [] };
    d.logger.warn({ err: failure, retryInMs: delay }, "job-service fails even an empty batch; retrying the result");
    await d.sleep(delay);
    if (d.closed()) throw new UnavailableError("broker closed before ReportResults succeeded", { cause: failure });
    delay = nextBackoff(delay);
    const again = await report(d, [item.result], dispatched, 1);
    if ("ok" in again) {
      await settle(d, [item], again.ok);
      return { settled: true };
    }
    failure = again.failed;
  }
  return { failure, dispatched };
}

/** Fails the attempt whose result was refused, with `reason`; answers whether its job was canceled. */
async function failInPlace(d: Delivery, result: TaskResult, reason: string): Promise<boolean> {
  const failed = create(TaskResultSchema, {
    taskId: result.taskId,
    attempt: result.attempt,
    outcome: { case: "failed", value: { error: reason, countsAsRetry: true, unrecoverable: true, stopTime: timestampNow() } },
  });
  const sent = await report(d, [failed], [], suspectAttempts);
  if (!("ok" in sent)) {
    d.logger.error({ err: sent.failed, task: result.taskId }, "job-service refused even the failure of a task whose result it refused");
    return false;
  }
  if (sent.ok.ready.length > 0) await settle(d, [], sent.ok);
  return sent.ok.outcomes[0]?.canceled ?? false;
}

