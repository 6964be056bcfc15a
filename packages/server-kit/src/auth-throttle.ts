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
  /**
   * Before a lookup: takes a token of `address` and answers 0, or answers how long until one comes
   * back, in ms. A lookup in flight holds its token, so concurrent guesses count at once.
   */
  take(address: string): number;
  /** The key from `address` resolved: its token comes back. */
  refund(address: string): void;
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
    const b = buckets.get(address);
    if (!b) return undefined;
    const t = now();
    b.tokens = Math.min(burst, b.tokens + ((t - b.at) / 1000) * rate);
    b.at = t;
    return b;
  };

  return {
    take(address) {
      const b = refill(address) ?? { tokens: burst, at: now() };
      if (b.tokens < 1) return rate > 0 ? Math.ceil(((1 - b.tokens) / rate) * 1000) : 60_000;
      b.tokens -= 1;
      buckets.set(address, b);
      return 0;
    },
    refund(address) {
      const b = refill(address);
      if (!b) return;
      b.tokens = Math.min(burst, b.tokens + 1);
      // A full bucket is the state of an address never seen: forget it.
      if (b.tokens >= burst) buckets.delete(address);
    },
  };
}
