// One LISTEN connection per process for one Postgres NOTIFY channel, fanned out to in-process
// subscribers by payload (a job id, a cluster id). Writers NOTIFY inside their transactions, so a
// change on one replica reaches subscribers on every replica once it commits. The connection is
// opened on the first subscription and opened again after it breaks; every subscriber is called
// after each (re)connect, since changes may have happened while nobody listened.
import pg from "pg";

export interface PgChannel {
  /** Calls `onChange` on each NOTIFY whose payload is `key`, and after every (re)connect. */
  subscribe(key: string, onChange: () => void): () => void;
  /** Calls the subscribers of `key` as a NOTIFY would (a change this process made, without LISTEN). */
  fire(key: string): void;
  /** Stops listening; safe twice. */
  close(): Promise<void>;
}

export interface PgChannelOptions {
  /** The database; unset: nothing is listened to, only `fire` reaches subscribers. */
  url?: string;
  /** The channel name (an SQL identifier of ours, never user input). */
  channel: string;
  /** Shown in pg_stat_activity. */
  applicationName: string;
  onError?: (err: unknown) => void;
  /** How long to wait before listening again after the connection broke (default 1 s). */
  retryMs?: number;
}

export function createPgChannel(options: PgChannelOptions): PgChannel {
  if (!/^[a-z_][a-z0-9_]*$/.test(options.channel)) throw new Error(`not a channel name: ${options.channel}`);
  const listeners = new Map<string, Set<() => void>>();
  let client: pg.Client | undefined;
  let connecting: Promise<void> | undefined;
  let closed = false;
  let retryTimer: NodeJS.Timeout | undefined;

  const fire = (key: string) => {
    const set = listeners.get(key);
    if (set) for (const f of set) f();
  };
  const fireAll = () => {
    for (const set of listeners.values()) for (const f of set) f();
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

  async function open(c: pg.Client): Promise<void> {
    c.on("notification", (msg) => {
      if (msg.channel === options.channel && msg.payload) fire(msg.payload);
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
    await c.query(`listen ${options.channel}`);
    if (closed) {
      await c.end().catch(() => {});
      return;
    }
    client = c;
    fireAll();
  }

  function connect(): Promise<void> {
    if (options.url === undefined || closed || client || connecting) return connecting ?? Promise.resolve();
    const c = new pg.Client({ connectionString: options.url, application_name: options.applicationName });
    connecting = open(c)
      .catch((err: unknown) => {
        options.onError?.(err);
        dropAndRetry(c);
      })
      .finally(() => {
        connecting = undefined;
      });
    return connecting;
  }

  return {
    subscribe(key, onChange) {
      let set = listeners.get(key);
      if (!set) listeners.set(key, (set = new Set()));
      set.add(onChange);
      void connect();
      return () => {
        set.delete(onChange);
        if (set.size === 0) listeners.delete(key);
      };
    },
    fire,
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
