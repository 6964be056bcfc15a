// Notices that Redis lost its data (restarted without persistence, flushed, failed over to an
// empty replica): a marker key written once is gone. One replica (the one that takes a short lock)
// then asks job-service to resynchronise (ResyncDispatch: running attempts expire, queued tasks are
// sent again) and writes a new marker; the others see the new marker and carry on. The broker's
// own loops recover by themselves (consumer groups are re-created on NOGROUP, leases missing from
// Redis answer "lease lost"). A wipe while no broker runs is not noticed: a broker that starts on
// an empty Redis cannot tell it from a first start, and writes the marker without a resync.
import { randomUUID } from "node:crypto";
import type { RedisClient } from "./redis/connection.js";
import type { Logger } from "pino";
import { clustersKey } from "./redis/keys.js";

export const markerKey = "corral:marker";
export const resyncLockKey = "corral:resync-lock";

export interface StoreMarkerWatch {
  /** One check now; resolves once a needed resync is done (or failed, to be retried next time). */
  checkOnce(): Promise<void>;
  start(): void;
  close(): Promise<void>;
  /** Resyncs this replica started and finished. */
  readonly resyncs: number;
}

export function createStoreMarkerWatch(options: {
  redis: RedisClient;
  brokerId: string;
  intervalMs: number;
  logger: Logger;
  /** Asks job-service to resynchronise; throws when it did not answer. */
  resync(reason: string): Promise<void>;
}): StoreMarkerWatch {
  const { redis, logger } = options;
  let known: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let closed = false;
  let resyncs = 0;

  async function check(): Promise<void> {
    const value = await redis.get(markerKey);
    if (value !== null) {
      known = value;
      return;
    }
    if (known === undefined) {
      // First look: a new deployment (or a new key prefix). Nothing to resynchronise.
      const fresh = `${Date.now()}-${randomUUID()}`;
      await redis.set(markerKey, fresh, "NX");
      known = (await redis.get(markerKey)) ?? fresh;
      logger.debug({ hadQueues: (await redis.exists(clustersKey)) === 1 }, "redis marker written");
      return;
    }
    const lock = await redis.set(resyncLockKey, options.brokerId, "PX", 60_000, "NX");
    if (lock === null) return; // another replica is resynchronising
    try {
      // Another replica may have resynchronised between our read and our lock (it writes the new
      // marker before it lets go of the lock): its marker stands for this wipe.
      const again = await redis.get(markerKey);
      if (again !== null) {
        known = again;
        return;
      }
      logger.warn({ broker: options.brokerId }, "redis lost its data (marker missing): asking job-service to resynchronise");
      await options.resync("redis marker missing");
      const next = `${Date.now()}-${randomUUID()}`;
      await redis.set(markerKey, next);
      known = next;
      resyncs++;
    } finally {
      await redis.del(resyncLockKey).catch(() => 0);
    }
  }

  const watch: StoreMarkerWatch = {
    checkOnce() {
      running ??= check()
        .catch((err: unknown) => logger.warn({ err }, "redis marker check failed; retrying"))
        .finally(() => (running = undefined));
      return running;
    },
    start() {
      if (timer || closed) return;
      const tick = () => {
        timer = setTimeout(async () => {
          await watch.checkOnce();
          if (!closed) tick();
        }, options.intervalMs);
        timer.unref();
      };
      void watch.checkOnce();
      tick();
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await running;
    },
    get resyncs() {
      return resyncs;
    },
  };
  return watch;
}
