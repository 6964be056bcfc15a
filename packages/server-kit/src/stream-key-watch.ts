// Long-lived streams opened with a team's API key re-check it: a sweep every `intervalMs` asks the
// verifier once per distinct key (however many streams share it) and aborts the streams of a key
// that no longer resolves, so a revoked key cannot keep a stream open for days.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { ApiKeyVerifier } from "./auth.js";

export interface WatchedStream {
  /** Aborts (reason: UNAUTHENTICATED) when the stream's key is revoked. */
  readonly signal: AbortSignal;
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

export function createStreamKeyWatch(options: StreamKeyWatchOptions): StreamKeyWatch {
  const byKey = new Map<string, Set<AbortController>>();
  const recheck = (key: string) => (options.verifier.recheck ?? options.verifier.verify)(key);
  let count = 0;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const revoke = (key: string) => {
    const streams = byKey.get(key);
    byKey.delete(key);
    if (!streams) return;
    count -= streams.size;
    for (const c of streams) c.abort(revokedKeyError());
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

  const watch: StreamKeyWatch = {
    get size() {
      return count;
    },
    watch(key) {
      const controller = new AbortController();
      let set = byKey.get(key);
      if (!set) byKey.set(key, (set = new Set()));
      set.add(controller);
      count++;
      let released = false;
      return {
        signal: controller.signal,
        release() {
          if (released) return;
          released = true;
          const s = byKey.get(key);
          if (!s?.delete(controller)) return;
          count--;
          if (s.size === 0) byKey.delete(key);
        },
      };
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
