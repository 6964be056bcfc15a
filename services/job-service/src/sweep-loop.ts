// A sweeper's background loop (the outbox sweeper, the start-timeout sweeper): server-kit's
// periodic loop running one sweep a pass, logging what a pass did and why one failed.
import { createPeriodicLoop, type PeriodicLoop } from "@corral/server-kit";
import type { Logger } from "pino";

export interface SweepLoopOptions {
  /** One sweep; answers how many tasks it handled. */
  sweep(): Promise<number>;
  intervalMs: number;
  /** The wait after a pass, when it is not `intervalMs`. */
  nextDelayMs?(): Promise<number>;
  logger: Logger | undefined;
  /** Logged (info) after a pass that handled tasks, and (warn) after one that failed. */
  messages: { swept: string; failed: string };
}

export function createSweepLoop(options: SweepLoopOptions): PeriodicLoop {
  const { logger, messages } = options;
  return createPeriodicLoop({
    intervalMs: options.intervalMs,
    nextDelayMs: options.nextDelayMs,
    run: async () => {
      const n = await options.sweep();
      if (n > 0) logger?.info({ tasks: n }, messages.swept);
    },
    onError: (err) => logger?.warn({ err }, messages.failed),
  });
}
