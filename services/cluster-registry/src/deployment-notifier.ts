// One LISTEN connection per registry process for deployment changes, fanned out to in-process
// watchers by cluster id. The deployments table's trigger NOTIFYs (channel DEPLOYMENT_CHANGES_CHANNEL,
// payload = cluster id) inside the writing transaction, so a deploy on one replica reaches watchers
// on every replica once it commits. Without a database URL (tests of one process), changes this
// process makes are passed on directly.
import pg from "pg";
import { DEPLOYMENT_CHANGES_CHANNEL } from "./store/database.js";

export interface DeploymentNotifier {
  /** Calls `onChange` whenever the cluster's deployments may have changed (also after a reconnect). */
  subscribe(clusterId: string, onChange: () => void): () => void;
  /** This process changed the cluster's deployments (committed); used when there is no LISTEN connection. */
  changed(clusterId: string): void;
  close(): Promise<void>;
}

export interface DeploymentNotifierOptions {
  /** The registry database; unset: only this process's own changes are seen. */
  url?: string;
  onError?: (err: unknown) => void;
  /** How long to wait before listening again after the connection broke (default 1 s). */
  retryMs?: number;
}

export function createDeploymentNotifier(options: DeploymentNotifierOptions): DeploymentNotifier {
  const listeners = new Map<string, Set<() => void>>();
  let client: pg.Client | undefined;
  let connecting: Promise<void> | undefined;
  let closed = false;
  let retryTimer: NodeJS.Timeout | undefined;

  const fire = (clusterId: string) => {
    const set = listeners.get(clusterId);
    if (set) for (const f of set) f();
  };
  const fireAll = () => {
    for (const set of listeners.values()) for (const f of set) f();
  };

  const connect = (): Promise<void> => {
    if (options.url === undefined || closed || client || connecting) return connecting ?? Promise.resolve();
    const c = new pg.Client({ connectionString: options.url, application_name: "cluster-registry-listen" });
    connecting = (async () => {
      try {
        c.on("notification", (msg) => {
          if (msg.channel === DEPLOYMENT_CHANGES_CHANNEL && msg.payload) fire(msg.payload);
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
        await c.query(`listen ${DEPLOYMENT_CHANGES_CHANNEL}`);
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
    }, options.retryMs ?? 1_000);
    retryTimer.unref();
  };

  return {
    subscribe(clusterId, onChange) {
      let set = listeners.get(clusterId);
      if (!set) listeners.set(clusterId, (set = new Set()));
      set.add(onChange);
      void connect();
      return () => {
        set.delete(onChange);
        if (set.size === 0) listeners.delete(clusterId);
      };
    },
    changed(clusterId) {
      if (options.url === undefined) fire(clusterId);
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
