// Long-lived streams opened with a team's API key re-check it: a sweep every `intervalMs` asks the
// verifier once per distinct key (however many streams share it) and aborts the streams of a key
// that no longer resolves, so a revoked key cannot keep a stream open for days.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { ApiKeyVerifier } from "./auth.js";

export interface WatchedStream {
  /**
   * Aborts (reason: UNAUTHENTICATED) when the stream's key is revoked. Made on first use: an
   * AbortSignal is near a kilobyte (its own hidden class, two Maps), and most streams never ask.
   */
  readonly signal: AbortSignal;
  /** The key was revoked: `reason` says so. */
  readonly revoked: boolean;
  readonly reason: unknown;
  /** Calls `listener` when the key is revoked (before the signal's listeners), unless released first. */
  onRevoked(listener: () => void): void;
  offRevoked(listener: () => void): void;
  /** The stream ended: stop watching it. Idempotent. */
  release(): void;
}

export interface StreamKeyWatch {
  watch(key: string): WatchedStream;
  /** One pass over every watched key now; resolves when done. */
  sweep(): Promise<void>;
  /** Streams watched now. */
  readonly size: number;
  start(): void;
  close(): void;
}

export interface StreamKeyWatchOptions {
  verifier: ApiKeyVerifier;
  /** How often keys are asked again (the key cache time, CORRAL_KEY_CACHE). */
  intervalMs: number;
  /** Lookups in flight at once during a sweep (default 16). */
  concurrency?: number;
  logger?: Logger;
}

export function revokedKeyError(): ConnectError {
  return new ConnectError("the API key was revoked", Code.Unauthenticated);
}

/** One watched stream: its revocation listeners, and its signal once someone asked for it. */
class Watched implements WatchedStream {
  #reason: unknown;
  #revoked = false;
  #controller: AbortController | undefined;
  /** One listener as itself (the usual case: the stream's own), more in an array. */
  #listeners: (() => void) | Array<() => void> | undefined;
  #released = false;
  readonly key: string;
  readonly #forget: (w: Watched) => void;

  constructor(key: string, forget: (w: Watched) => void) {
    this.key = key;
    this.#forget = forget;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#revoked) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  get revoked(): boolean {
    return this.#revoked;
  }

  get reason(): unknown {
    return this.#reason;
  }

  onRevoked(listener: () => void): void {
    const l = this.#listeners;
    this.#listeners = l === undefined ? listener : typeof l === "function" ? [l, listener] : [...l, listener];
  }

  offRevoked(listener: () => void): void {
    const l = this.#listeners;
    if (l === listener) this.#listeners = undefined;
    else if (Array.isArray(l)) {
      const i = l.indexOf(listener);
      if (i >= 0) this.#listeners = l.length === 2 ? l[1 - i] : l.filter((_, j) => j !== i);
    }
  }

  revoke(reason: unknown): void {
    if (this.#revoked) return;
    this.#revoked = true;
    this.#reason = reason;
    const l = this.#listeners;
    this.#listeners = undefined;
    if (typeof l === "function") l();
    else for (const listener of l ?? []) listener();
    this.#controller?.abort(reason);
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#listeners = undefined;
    this.#forget(this);
  }
}

export function createStreamKeyWatch(options: StreamKeyWatchOptions): StreamKeyWatch {
  const byKey = new Map<string, Set<Watched>>();
  const recheck = (key: string) => (options.verifier.recheck ?? options.verifier.verify)(key);
  let count = 0;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const revoke = (key: string) => {
    const streams = byKey.get(key);
    byKey.delete(key);
    if (!streams) return;
    count -= streams.size;
    for (const w of streams) w.revoke(revokedKeyError());
  };

  const check = async (key: string) => {
    try {
      if (!(await recheck(key))) revoke(key);
    } catch (err) {
      // The registry does not answer: streams stay (the verifier bridges outages with stale answers).
      options.logger?.warn({ err }, "could not re-check a stream's API key");
    }
  };

  const pass = async () => {
    const keys = [...byKey.keys()];
    let next = 0;
    const worker = async () => {
      while (next < keys.length) await check(keys[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 16, keys.length) }, worker));
  };

  /** A stream was released: no longer watched (a revoked one already is not). */
  const forget = (w: Watched) => {
    const s = byKey.get(w.key);
    if (!s?.delete(w)) return;
    count--;
    if (s.size === 0) byKey.delete(w.key);
  };

  const watch: StreamKeyWatch = {
    get size() {
      return count;
    },
    watch(key) {
      let set = byKey.get(key);
      if (!set) byKey.set(key, (set = new Set()));
      const watched = new Watched(key, forget);
      set.add(watched);
      count++;
      return watched;
    },
    sweep() {
      // One pass at a time: a slow registry must not pile passes up.
      running ??= pass().finally(() => (running = undefined));
      return running;
    },
    start() {
      if (timer) return;
      timer = setInterval(() => void watch.sweep(), options.intervalMs);
      timer.unref();
    },
    close() {
      clearInterval(timer);
      timer = undefined;
    },
  };
  return watch;
}
