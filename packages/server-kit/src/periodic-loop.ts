// A background pass that runs again a while after each run ends (a sweeper, a watch): never two
// passes at once, a failed pass logged through `onError` and the loop going on, and close() that
// stops the loop and waits for a pass in progress. The wait after a pass may be computed
// (`nextDelayMs`, e.g. until the next row falls due).
export interface PeriodicLoop {
  /** Starts the loop (a second call does nothing; after close() neither does the first). */
  start(): void;
  /** Stops the loop and resolves once a pass in progress has ended. Idempotent. */
  close(): Promise<void>;
}

export interface PeriodicLoopOptions {
  /** One pass. */
  run(): Promise<unknown>;
  /** The wait between passes (and before the first, unless `immediate`). */
  intervalMs: number;
  /** The wait after a pass, when it is not `intervalMs`; a throw falls back to `intervalMs`. */
  nextDelayMs?(): Promise<number> | number;
  /** The first pass runs at start() rather than after the first interval (default false). */
  immediate?: boolean;
  /** A pass failed; the loop carries on. */
  onError?(err: unknown): void;
}

export function createPeriodicLoop(options: PeriodicLoopOptions): PeriodicLoop {
  let timer: NodeJS.Timeout | undefined;
  let pass: Promise<void> | undefined;
  let started = false;
  let closed = false;

  async function delayAfterPass(): Promise<number> {
    if (!options.nextDelayMs) return options.intervalMs;
    try {
      return await options.nextDelayMs();
    } catch {
      return options.intervalMs;
    }
  }

  function schedule(ms: number): void {
    if (closed) return;
    timer = setTimeout(tick, ms);
    timer.unref();
  }

  function tick(): void {
    timer = undefined;
    pass = (async () => {
      try {
        await options.run();
      } catch (err) {
        options.onError?.(err);
      }
      const wait = await delayAfterPass();
      pass = undefined;
      schedule(wait);
    })();
  }

  return {
    start() {
      if (started || closed) return;
      started = true;
      if (options.immediate) tick();
      else schedule(options.intervalMs);
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await pass;
    },
  };
}
