// The scheduler loop each job-service replica runs: once per tick one cheap query asks whether any
// automation or storage trigger is due; due ones are fired one transaction each (rows locked with
// SKIP LOCKED, so replicas share the work and a restart loses nothing: all state is in Postgres).
// Directory triggers are also watched with fs.watch, which makes a trigger list sooner.
import type { Logger } from "pino";
import { createDirectoryWatchers } from "./directory-watchers.js";
import { fireDueAutomation, pollDueTrigger, type FireContext, type Fired } from "./domain/automations/fire-automations.js";
import type { EnvelopeRow } from "./store/database.js";

export interface AutomationSchedulerOptions {
  fire: FireContext;
  /** Hands the fired jobs' ready tasks to the broker (after commit). */
  enqueue(ready: EnvelopeRow[]): Promise<void>;
  /** The clock (tests inject one). */
  now?: () => Date;
  /** Time between ticks (default 1 s): at most one query per tick when nothing is due. */
  tickMs?: number;
  /** Time after a watch event before the directory is listed (the settle time, plus a little). */
  watchDelayMs?: number;
  /** Watch directory triggers with fs.watch (default true). */
  watch?: boolean;
  logger?: Logger;
}

export interface TickResult {
  jobs: number;
  skipped: number;
}

export interface AutomationScheduler {
  start(): void;
  /** Runs the next tick now (after a local change). */
  wake(): void;
  /** Fires everything due at `now` (default: the clock); tests call it directly. */
  tick(now?: Date): Promise<TickResult>;
  /** Stops the loop and the watchers and waits for a running tick. Idempotent. */
  close(): Promise<void>;
}

/** Most transactions one tick runs before yielding to the next (a backlog drains over ticks). */
const MAX_ROUNDS_PER_TICK = 100;
/** How often the replica re-reads which directories to watch. */
const WATCH_SYNC_TICKS = 10;

/** Fires what `next` finds until nothing is due, at most MAX_ROUNDS_PER_TICK rounds (a backlog drains over ticks). */
async function fireRounds(next: () => Promise<Fired | undefined>, settle: (f: Fired) => Promise<void>, signal: AbortSignal): Promise<void> {
  for (let round = 0; round < MAX_ROUNDS_PER_TICK && !signal.aborted; round++) {
    const f = await next();
    if (!f) return;
    await settle(f);
  }
}

/** Waits `ms`, or until woken (through the function handed to `onWake`, unset after) or stopped. */
function pause(ms: number, signal: AbortSignal, onWake: (wake: (() => void) | undefined) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      onWake(undefined);
      resolve();
    };
    const timer = setTimeout(done, ms);
    onWake(done);
    signal.addEventListener("abort", done, { once: true });
  });
}

export function createAutomationScheduler(options: AutomationSchedulerOptions): AutomationScheduler {
  const { fire, logger } = options;
  const store = fire.store;
  const clock = options.now ?? (() => new Date());
  const tickMs = options.tickMs ?? 1_000;
  const stop = new AbortController();
  const watchers = createDirectoryWatchers({ delayMs: options.watchDelayMs ?? 1_100, onChange: (id) => void scanNow(id) });
  let wakeUp: (() => void) | undefined;
  let loop: Promise<void> | undefined;
  let ticks = 0;

  const settle = async (f: Fired | undefined, result: TickResult) => {
    if (!f) return;
    result.jobs += f.jobs;
    result.skipped += f.skipped;
    if (f.ready.length > 0) await options.enqueue(f.ready);
  };

  async function tick(now = clock()): Promise<TickResult> {
    const result: TickResult = { jobs: 0, skipped: 0 };
    const next = await store.automations.nextDue();
    if (next === null || next > now) return result;
    const each = (f: Fired) => settle(f, result);
    await fireRounds(() => fireDueAutomation(fire, now), each, stop.signal);
    const poll = () =>
      pollDueTrigger(fire, now, undefined, stop.signal).catch((err: unknown) => {
        logger?.warn({ err }, "a storage trigger could not be listed; it is retried");
        return undefined;
      });
    await fireRounds(poll, each, stop.signal);
    return result;
  }

  async function scanNow(triggerId: string) {
    try {
      await settle(await pollDueTrigger(fire, clock(), triggerId, stop.signal), { jobs: 0, skipped: 0 });
    } catch (err) {
      logger?.warn({ err, triggerId }, "a directory trigger could not be listed; the next poll retries");
    }
  }

  async function syncWatchers() {
    watchers.sync(new Map((await store.automations.watchedDirectories()).map((d) => [d.id, d.path])));
  }

  async function run() {
    while (!stop.signal.aborted) {
      try {
        if (options.watch !== false && ticks++ % WATCH_SYNC_TICKS === 0) await syncWatchers();
        await tick();
      } catch (err) {
        logger?.warn({ err }, "automation tick failed; retrying");
      }
      await pause(tickMs, stop.signal, (wake) => (wakeUp = wake));
    }
  }

  let closing: Promise<void> | undefined;
  return {
    start() {
      loop ??= run();
    },
    wake: () => wakeUp?.(),
    tick,
    close() {
      closing ??= (async () => {
        stop.abort();
        watchers.close();
        await loop;
      })();
      return closing;
    },
  };
}
