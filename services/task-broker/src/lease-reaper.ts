// Expires leases that were not extended in time. Runs on every replica: the expire script hands
// each lease to exactly one caller, so replicas never report the same expiry twice (a replica that
// dies while reporting leaves it parked; another picks it up after the report deadline).
import type { Logger } from "pino";
import type { ExpiredLease, LeaseStore } from "./redis/lease-store.js";

export interface LeaseReaper {
  start(): void;
  /** Runs one pass now (tests, and the loop itself). */
  reapOnce(): Promise<number>;
  stop(): Promise<void>;
}

export function createLeaseReaper(options: {
  leases: LeaseStore;
  intervalMs: number;
  /** Leases per cluster per pass. */
  batchLimit: number;
  reportTimeoutMs: number;
  logger: Logger;
  onExpired(leases: ExpiredLease[]): void;
}): LeaseReaper {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  let stopped = false;

  async function pass(): Promise<number> {
    let total = 0;
    for (;;) {
      const expired = await options.leases.expireDue(options.batchLimit, options.reportTimeoutMs);
      if (expired.length > 0) options.onExpired(expired);
      total += expired.length;
      if (expired.length < options.batchLimit || stopped) return total;
    }
  }

  const reaper: LeaseReaper = {
    start() {
      if (timer || stopped) return;
      const tick = () => {
        timer = setTimeout(async () => {
          await reaper.reapOnce().catch((err: unknown) => options.logger.warn({ err }, "lease reaper pass failed"));
          if (!stopped) tick();
        }, options.intervalMs);
        timer.unref();
      };
      tick();
    },
    reapOnce() {
      running ??= pass().finally(() => (running = undefined));
      return running;
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running?.catch(() => {});
    },
  };
  return reaper;
}
