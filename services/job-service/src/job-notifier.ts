// One LISTEN connection per process for job changes, fanned out to in-process watchers by job id.
// Writers NOTIFY (channel JOB_CHANGES_CHANNEL, payload = job id) inside their transactions.
import pg from "pg";
import type { JobChanges } from "./domain/ports.js";
import { JOB_CHANGES_CHANNEL } from "./store/database.js";

/** JobChanges over LISTEN; `onChange` is also called after a reconnect. */
export interface JobNotifier extends JobChanges {
  close(): Promise<void>;
}

export function createJobNotifier(options: { url: string; schema?: string; onError?: (err: unknown) => void }): JobNotifier {
  const listeners = new Map<string, Set<() => void>>();
  let client: pg.Client | undefined;
  let connecting: Promise<void> | undefined;
  let closed = false;
  let retryTimer: NodeJS.Timeout | undefined;

  const fireAll = () => {
    for (const set of listeners.values()) for (const f of set) f();
  };

  const connect = (): Promise<void> => {
    if (closed || client || connecting) return connecting ?? Promise.resolve();
    const c = new pg.Client({ connectionString: options.url, application_name: "job-service-listen" });
    connecting = (async () => {
      try {
        c.on("notification", (msg) => {
          const set = msg.payload ? listeners.get(msg.payload) : undefined;
          if (set) for (const f of set) f();
        });
        c.on("error", (err) => {
          options.onError?.(err);
          dropAndRetry(c);
        });
        // The server went away without an error event (restart, idle kill): listen again.
        c.on("end", () => {
          if (!closed && client === c) dropAndRetry(c);
        });
        await c.connect();
        await c.query(`listen ${JOB_CHANGES_CHANNEL}`);
        if (closed) {
          await c.end().catch(() => {});
          return;
        }
        client = c;
        // Changes may have happened while nobody listened: let every watcher look again.
        fireAll();
      } catch (err) {
        options.onError?.(err);
        dropAndRetry(c);
      } finally {
        connecting = undefined;
      }
    })();
    return connecting;
  };

  const dropAndRetry = (c: pg.Client) => {
    if (client === c) client = undefined;
    c.end().catch(() => {});
    if (closed || retryTimer || listeners.size === 0) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void connect();
    }, 1_000);
    retryTimer.unref();
  };

  return {
    subscribe(jobId, onChange) {
      let set = listeners.get(jobId);
      if (!set) listeners.set(jobId, (set = new Set()));
      set.add(onChange);
      void connect();
      return () => {
        set.delete(onChange);
        if (set.size === 0) listeners.delete(jobId);
      };
    },
    async close() {
      if (closed) return;
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      await connecting;
      const c = client;
      client = undefined;
      listeners.clear();
      if (c) await c.end().catch(() => {});
    },
  };
}
