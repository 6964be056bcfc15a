// Services other than the registry resolve API keys through the registry's internal VerifyApiKey,
// with a short cache so a revocation takes effect within `ttlMs`, and stale answers bridge a
// registry restart. A key in use is looked up again in the background once its answer is half
// the TTL old, so callers of a busy key never wait for the registry. Good and bad answers live in
// separate LRU caches: a flood of random keys churns the bad one and never pushes out good keys.
import { Code, ConnectError } from "@connectrpc/connect";
import type { ApiKeyVerifier, Caller } from "./auth.js";
import { LruCache } from "./lru-cache.js";
import { createRegistryClient, type RegistryClient } from "./registry-client.js";

export interface RegistryKeyVerifierOptions {
  /** The registry's URL and the internal service key; unused when `registry` is given. */
  baseUrl?: string;
  serviceKey?: string;
  /** The registry client the process already has (it resolves cluster slugs over the same session). */
  registry?: RegistryClient;
  /** How long an answer is trusted (default 2 s). */
  ttlMs?: number;
  /** How long a key that does not resolve is answered from the cache (default 5 s). */
  negativeTtlMs?: number;
  /** How long a known-good key keeps working while the registry does not answer (default 5 min). */
  staleMs?: number;
  /** Good keys kept (default 10,000). */
  maxKeys?: number;
  /** Keys that did not resolve kept (default 10,000). */
  maxBadKeys?: number;
  /** Asks the registry; a test seam (default: the registry client's VerifyApiKey). */
  lookup?: (key: string) => Promise<Caller | undefined>;
  now?: () => number;
}

export function createRegistryKeyVerifier(options: RegistryKeyVerifierOptions): ApiKeyVerifier {
  let ask = options.lookup;
  if (!ask) {
    const registry = options.registry ?? createRegistryClient({ baseUrl: options.baseUrl, serviceKey: options.serviceKey });
    ask = (key) => registry.verifyApiKey(key);
  }
  const now = options.now ?? Date.now;
  const ttl = options.ttlMs ?? 2_000;
  const negativeTtl = options.negativeTtlMs ?? 5_000;
  const stale = options.staleMs ?? 300_000;
  const good = new LruCache<string, { caller: Caller; at: number }>(options.maxKeys ?? 10_000);
  const bad = new LruCache<string, number>(options.maxBadKeys ?? 10_000);
  const inflight = new Map<string, Promise<Caller | undefined>>();

  const lookup = async (key: string): Promise<Caller | undefined> => {
    let caller: Caller | undefined;
    try {
      caller = await ask(key);
    } catch {
      const old = good.peek(key);
      if (old && now() - old.at < stale) return old.caller;
      throw new ConnectError("cannot verify the API key: the registry does not answer", Code.Unavailable);
    }
    if (caller) {
      good.set(key, { caller, at: now() });
      bad.delete(key);
    } else {
      good.delete(key);
      bad.set(key, now());
    }
    return caller;
  };

  const start = (key: string): Promise<Caller | undefined> => {
    let p = inflight.get(key);
    if (!p) {
      p = lookup(key).finally(() => inflight.delete(key));
      inflight.set(key, p);
    }
    return p;
  };

  return {
    async verify(key) {
      const hit = good.get(key);
      const age = hit ? now() - hit.at : Infinity;
      if (hit && age < ttl) {
        // Refresh ahead; a failure here changes nothing (the next caller past the TTL retries).
        if (age >= ttl / 2 && !inflight.has(key)) start(key).catch(() => {});
        return hit.caller;
      }
      const refused = bad.get(key);
      if (refused !== undefined && now() - refused < negativeTtl) return undefined;
      return start(key);
    },
    recheck: (key) => start(key),
  };
}
