// Gets ready tasks from the outbox to the broker: right after commit for submissions and retries,
// and by a sweeper for rows the broker has not acknowledged in time (a crash between commit and
// enqueue, a broker that was down, a ready list whose ack never came). Enqueue is idempotent per
// task attempt on the broker side, so sending twice is safe.
import type { Kysely } from "kysely";
import type { TaskEnvelope } from "@corral/proto";
import type { Logger } from "pino";
import { toEnvelope } from "../domain/convert.js";
import type { Dispatcher, OutboxKey } from "../domain/ports.js";
import type { EnvelopeRow, JobsDatabase } from "../store/database.js";
import { createSweepLoop } from "../sweep-loop.js";
import { claimDelayedOutbox, claimDueOutbox, deleteOutbox, nextDelayedOutbox, queuedEnvelopesPage } from "../store/outbox-repository.js";

export interface OutboxRelay {
  /** Enqueues now and deletes the outbox rows on success; on failure the sweeper retries later. */
  enqueue(rows: EnvelopeRow[]): Promise<boolean>;
  /** The same for envelopes built already (a result batch's ready tasks); false when the broker did not take them all. */
  enqueueEnvelopes(envelopes: TaskEnvelope[]): Promise<boolean>;
  acknowledge(keys: OutboxKey[]): Promise<number>;
  /**
   * Re-sends outbox rows older than the sweep timeout, and sends held rows (a delayed start, a
   * retry's backoff) whose time has come; returns how many were sent.
   */
  sweepOnce(): Promise<number>;
  /** Enqueues every queued, dispatchable task again (Redis lost its data); returns the count. */
  requeueAll(): Promise<number>;
  start(): void;
  close(): Promise<void>;
}

export interface OutboxRelayOptions {
  db: Kysely<JobsDatabase>;
  dispatcher: Dispatcher;
  /** How often the sweeper runs (default 2 s). */
  sweepIntervalMs?: number;
  /** Age after which an unacknowledged row is sent again (default 5 s). */
  sweepAfterMs?: number;
  batchSize?: number;
  /** The clock held rows fall due by. */
  now?: () => Date;
  logger?: Logger;
}

export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { db, dispatcher } = options;
  const intervalMs = options.sweepIntervalMs ?? 2_000;
  const afterMs = options.sweepAfterMs ?? 5_000;
  const batchSize = options.batchSize ?? 1_000;
  const now = options.now ?? (() => new Date());
  /** A send's envelopes built from its rows a call at a time. */
  const envelopesOf = (rows: EnvelopeRow[]) => (start: number, end: number) => rows.slice(start, end).map(toEnvelope);
  const send = (rows: EnvelopeRow[]) => sendInLanes(dispatcher, rows.length, batchSize, envelopesOf(rows));
  /** Sends what `claim` hands out, a batch at a time, deleting each batch's rows once sent. */
  async function sendClaimed(claim: () => Promise<EnvelopeRow[]>): Promise<number> {
    let sent = 0;
    for (;;) {
      const rows = await claim();
      if (rows.length === 0) break;
      await send(rows);
      await deleteOutbox(db, rows.map((r) => ({ taskId: r.id, attempt: r.attempt })));
      sent += rows.length;
      if (rows.length < batchSize) break;
    }
    return sent;
  }

  /** Sends `count` envelopes built by `batch` and deletes their outbox rows; false (rows kept) when a call failed. */
  async function sendAndDelete(count: number, batch: (start: number, end: number) => TaskEnvelope[], keys: () => OutboxKey[]): Promise<boolean> {
    if (count === 0) return true;
    try {
      await sendInLanes(dispatcher, count, batchSize, batch);
      await deleteOutbox(db, keys());
      return true;
    } catch (err) {
      options.logger?.warn({ err, tasks: count }, "enqueue failed; the outbox rows stay");
      return false;
    }
  }

  const relay: OutboxRelay = {
    enqueue: (rows) =>
      sendAndDelete(
        rows.length,
        envelopesOf(rows),
        () => rows.map((r) => ({ taskId: r.id, attempt: r.attempt })),
      ),
    enqueueEnvelopes: (envelopes) =>
      sendAndDelete(
        envelopes.length,
        (start, end) => envelopes.slice(start, end),
        () => envelopes.map((e) => ({ taskId: e.taskId, attempt: e.attempt })),
      ),
    acknowledge(keys) {
      return deleteOutbox(db, keys);
    },
    async sweepOnce() {
      const overdue = await sendClaimed(() => claimDueOutbox(db, afterMs, batchSize));
      return overdue + (await sendClaimed(() => claimDelayedOutbox(db, now(), batchSize)));
    },
    async requeueAll() {
      let after = "";
      let sent = 0;
      for (;;) {
        const rows = await queuedEnvelopesPage(db, after, batchSize);
        if (rows.length === 0) break;
        await send(rows);
        sent += rows.length;
        after = rows[rows.length - 1]!.id;
      }
      return sent;
    },
    start: () => loop.start(),
    close: () => loop.close(),
  };
  // A held row falling due before the next regular sweep wakes the sweeper at its time.
  const loop = createSweepLoop({
    sweep: () => relay.sweepOnce(),
    intervalMs,
    nextDelayMs: async () => {
      const at = await nextDelayedOutbox(db);
      return at === undefined ? intervalMs : Math.max(10, Math.min(intervalMs, at.getTime() - now().getTime()));
    },
    logger: options.logger,
    messages: { swept: "outbox sweeper re-sent tasks", failed: "outbox sweep failed" },
  });
  return relay;
}

/** Enqueue calls in flight at once. */
const PARALLEL_BATCHES = 3;

/** Envelopes in a send's first Enqueue call; each next call takes four times as many, up to the batch size. */
const FIRST_BATCH = 100;

/**
 * The [start, end) ranges of a send's Enqueue calls: a small first call, so runners start on it
 * while the larger ones behind it are encoded, sent and scripted (a 10,000-task submission's
 * first task used to wait for three calls of 1,000 taken in turns by the broker), then calls
 * growing fourfold to `batchSize`.
 */
export function sendBatches(total: number, batchSize: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let size = Math.min(FIRST_BATCH, batchSize);
  for (let start = 0; start < total; start += size, size = Math.min(batchSize, size * 4)) out.push([start, Math.min(total, start + size)]);
  return out;
}

/**
 * A few Enqueue calls in flight at once: encoding here, decoding in the broker and the scripts in
 * Redis then overlap instead of taking turns (order across batches never mattered: every enqueue
 * is idempotent and runners take tasks in any order). `batch` builds a call's envelopes when its
 * turn comes, so the first batch leaves before the rest is built.
 */
async function sendInLanes(
  dispatcher: Dispatcher,
  count: number,
  batchSize: number,
  batch: (start: number, end: number) => TaskEnvelope[],
): Promise<void> {
  const batches = sendBatches(count, batchSize);
  let next = 0;
  const lane = async () => {
    while (next < batches.length) {
      const [start, end] = batches[next++]!;
      await dispatcher.enqueue(batch(start, end));
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_BATCHES, batches.length) }, lane));
}
