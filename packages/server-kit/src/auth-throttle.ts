// Failed API key checks per client address: a token bucket each, so one address guessing keys is
// refused before its guesses reach the registry or Postgres, while other addresses, and keys that
// verified recently from anywhere, are not slowed.
import { LruCache } from "./lru-cache.js";

export interface AuthThrottleOptions {
  /** Failures per second an address may keep up (default 20). */
  failuresPerSecond?: number;
  /** Failures an address may make at once (default 50). */
  burst?: number;
  /** Addresses tracked; the least recently failing are forgotten first (default 100,000). */
  maxAddresses?: number;
  now?: () => number;
}

export interface AuthThrottle {
  /** 0 when `address` may try a key now; otherwise how long until it may, in ms. */
  retryAfterMs(address: string): number;
  /** A key from `address` did not resolve. */
  failed(address: string): void;
}

interface Bucket {
  tokens: number;
  at: number;
}

export function createAuthThrottle(options: AuthThrottleOptions = {}): AuthThrottle {
  const rate = options.failuresPerSecond ?? 20;
  const burst = options.burst ?? 50;
  const now = options.now ?? Date.now;
  const buckets = new LruCache<string, Bucket>(options.maxAddresses ?? 100_000);

  const refill = (address: string): Bucket | undefined => {
    const b = buckets.peek(address);
    if (!b) return undefined;
    const t = now();
    b.tokens = Math.min(burst, b.tokens + ((t - b.at) / 1000) * rate);
    b.at = t;
    return b;
  };

  return {
    retryAfterMs(address) {
      const b = refill(address);
      if (!b || b.tokens >= 1) return 0;
      return rate > 0 ? Math.ceil(((1 - b.tokens) / rate) * 1000) : 60_000;
    },
    failed(address) {
      const b = refill(address) ?? { tokens: burst, at: now() };
      b.tokens = Math.max(0, b.tokens - 1);
      buckets.set(address, b);
    },
  };
}
