// Notices that Redis lost its data (restarted without persistence, flushed, failed over to an
// empty replica): a marker key written once is gone. One replica (the one that takes a short lock)
// then asks job-service to resynchronise (ResyncDispatch: running attempts expire, queued tasks are
// sent again) and writes a new marker; the others see the new marker and carry on. The broker's
// own loops recover by themselves (consumer groups are re-created on NOGROUP, leases missing from
// Redis answer "lease lost"). A broker that starts on a Redis without the marker cannot tell a
// first start from a wipe while no broker ran, so it resynchronises then too: on a new deployment
// that finds nothing to do, after a wipe it brings the queued tasks back.
//
// The request says since when the marker was seen missing: attempts that started later were leased
// in the Redis there is now, and job-service leaves them running. That matters when a resync has to
// be tried again (job-service not up yet when the broker starts): by the retry this broker has
// handed out work, which an unbounded resync would expire and run a second time.
import { randomUUID } from "node:crypto";
import { createPeriodicLoop } from "@corral/server-kit";
import type { RedisClient } from "./redis/connection.js";
import type { Logger } from "pino";
import { clustersKey } from "./redis/keys.js";

export const markerKey = "corral:marker";
export const resyncLockKey = "corral:resync-lock";

/** TaskLedgerService.ResyncDispatch's request: running attempts started before `lostSince` expire. */
export interface ResyncRequest {
  reason: string;
  brokerId: string;
  lostSince: Date;
}

export interface StoreMarkerWatch {
  /** One check now; resolves once a needed resync is done (or failed, to be retried next time). */
  checkOnce(): Promise<void>;
  start(): void;
  close(): Promise<void>;
  /** Resyncs this replica started and finished. */
  readonly resyncs: number;
}

export interface StoreMarkerOptions {
  redis: RedisClient;
  brokerId: string;
  intervalMs: number;
  logger: Logger;
  /** Asks job-service to resynchronise; throws when it did not answer. */
  resync(request: ResyncRequest): Promise<void>;
}

/** What this replica knows of the marker: the value it last saw, and since when it has been missing. */
interface MarkerState {
  known: string | undefined;
  missingSince: Date | undefined;
}

/** The marker is there (again): remember it. */
function seen(state: MarkerState, value: string): void {
  state.known = value;
  state.missingSince = undefined;
}

export function createStoreMarkerWatch(options: StoreMarkerOptions): StoreMarkerWatch {
  const state: MarkerState = { known: undefined, missingSince: undefined };
  let running: Promise<void> | undefined;
  let resyncs = 0;

  async function check(): Promise<void> {
    const value = await options.redis.get(markerKey);
    if (value !== null) return seen(state, value);
    state.missingSince ??= new Date();
    if (await resyncUnderLock(options, state)) resyncs++;
  }

  const watch: StoreMarkerWatch = {
    checkOnce() {
      running ??= check()
        .catch((err: unknown) => options.logger.warn({ err }, "redis marker check failed; retrying"))
        .finally(() => (running = undefined));
      return running;
    },
    start: () => loop.start(),
    async close() {
      await loop.close();
      await running;
    },
    get resyncs() {
      return resyncs;
    },
  };
  const loop = createPeriodicLoop({ intervalMs: options.intervalMs, immediate: true, run: () => watch.checkOnce() });
  return watch;
}

/**
 * The marker is missing: under a short lock (another replica holding it is resynchronising), asks
 * job-service to resynchronise and writes a new marker. True when this call did the resync.
 */
async function resyncUnderLock(options: StoreMarkerOptions, state: MarkerState): Promise<boolean> {
  const { redis, logger, brokerId } = options;
  const atStart = state.known === undefined;
  const lock = await redis.set(resyncLockKey, brokerId, "PX", 60_000, "NX");
  if (lock === null) return false; // another replica is resynchronising
  try {
    // Another replica may have resynchronised between our read and our lock (it writes the new
    // marker before it lets go of the lock): its marker stands for this wipe.
    const again = await redis.get(markerKey);
    if (again !== null) {
      seen(state, again);
      return false;
    }
    if (atStart) {
      logger.info(
        { broker: brokerId, hadQueues: (await redis.exists(clustersKey)) === 1 },
        "no redis marker at start (a new deployment, or data lost while no broker ran): asking job-service to resynchronise",
      );
    } else {
      logger.warn({ broker: brokerId }, "redis lost its data (marker missing): asking job-service to resynchronise");
    }
    await options.resync({
      reason: atStart ? "redis marker missing at broker start" : "redis marker missing",
      brokerId,
      lostSince: state.missingSince!,
    });
    const next = `${Date.now()}-${randomUUID()}`;
    await redis.set(markerKey, next);
    seen(state, next);
    return true;
  } finally {
    await redis.del(resyncLockKey).catch(() => 0);
  }
}
