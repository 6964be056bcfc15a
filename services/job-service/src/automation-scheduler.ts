// The scheduler loop each job-service replica runs: once per tick one cheap query asks whether any
// automation or storage trigger is due; due ones are fired one transaction each (rows locked with
// SKIP LOCKED, so replicas share the work and a restart loses nothing: all state is in Postgres).
// Directory triggers are also watched with fs.watch, which makes a trigger list sooner.
import { watch, type FSWatcher } from "node:fs";
import type { Logger } from "pino";
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

export function createAutomationScheduler(options: AutomationSchedulerOptions): AutomationScheduler {
  const { fire, logger } = options;
  const store = fire.store;
  const clock = options.now ?? (() => new Date());
  const tickMs = options.tickMs ?? 1_000;
  const stop = new AbortController();
  const watchers = new Map<string, FSWatcher>();
  const pendingScans = new Map<string, NodeJS.Timeout>();
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
    for (let round = 0; round < MAX_ROUNDS_PER_TICK && !stop.signal.aborted; round++) {
      const f = await fireDueAutomation(fire, now);
      if (!f) break;
      await settle(f, result);
    }
    for (let round = 0; round < MAX_ROUNDS_PER_TICK && !stop.signal.aborted; round++) {
      let f: Fired | undefined;
      try {
        f = await pollDueTrigger(fire, now, undefined, stop.signal);
      } catch (err) {
        logger?.warn({ err }, "a storage trigger could not be listed; it is retried");
        break;
      }
      if (!f) break;
      await settle(f, result);
    }
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
    const wanted = new Map((await store.automations.watchedDirectories()).map((d) => [d.id, d.path]));
    for (const [id, w] of watchers) {
      if (!wanted.has(id)) {
        w.close();
        watchers.delete(id);
      }
    }
    for (const [id, path] of wanted) {
      if (watchers.has(id)) continue;
      try {
        const w = watch(path, { recursive: true }, () => {
          if (pendingScans.has(id) || stop.signal.aborted) return;
          pendingScans.set(
            id,
            setTimeout(() => {
              pendingScans.delete(id);
              void scanNow(id);
            }, options.watchDelayMs ?? 1_100),
          );
        });
        w.on("error", () => {
          w.close();
          watchers.delete(id);
        });
        watchers.set(id, w);
      } catch {
        // Not there (yet) on this replica: the periodic listing still covers it.
      }
    }
  }

  async function run() {
    while (!stop.signal.aborted) {
      try {
        if (options.watch !== false && ticks++ % WATCH_SYNC_TICKS === 0) await syncWatchers();
        await tick();
      } catch (err) {
        logger?.warn({ err }, "automation tick failed; retrying");
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          stop.signal.removeEventListener("abort", done);
          wakeUp = undefined;
          resolve();
        };
        const timer = setTimeout(done, tickMs);
        wakeUp = done;
        stop.signal.addEventListener("abort", done, { once: true });
      });
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
        for (const t of pendingScans.values()) clearTimeout(t);
        for (const w of watchers.values()) w.close();
        watchers.clear();
        await loop;
      })();
      return closing;
    },
  };
}
