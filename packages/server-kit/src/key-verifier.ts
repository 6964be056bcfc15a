// Services other than the registry resolve API keys through the registry's internal VerifyApiKey,
// with a short cache so a revocation takes effect within `ttlMs`, and stale answers bridge a
// registry restart. A key in use is looked up again in the background once its answer is half
// the TTL old, so callers of a busy key never wait for the registry.
import { Code, ConnectError } from "@connectrpc/connect";
import { ApiKeyService } from "@corral/proto";
import type { ApiKeyVerifier, Caller } from "./auth.js";
import { createServiceClient } from "./client.js";

export interface RegistryKeyVerifierOptions {
  baseUrl: string;
  serviceKey: string;
  /** How long an answer is trusted (default 2 s). */
  ttlMs?: number;
  /** How long a known-good key keeps working while the registry does not answer (default 5 min). */
  staleMs?: number;
}

interface Entry {
  caller: Caller | undefined;
  at: number;
}

export function createRegistryKeyVerifier(options: RegistryKeyVerifierOptions): ApiKeyVerifier {
  const client = createServiceClient(ApiKeyService, { baseUrl: options.baseUrl, apiKey: options.serviceKey, timeoutMs: 5_000 });
  const ttl = options.ttlMs ?? 2_000;
  const stale = options.staleMs ?? 300_000;
  const cache = new Map<string, Entry>();
  const inflight = new Map<string, Promise<Caller | undefined>>();

  const lookup = async (key: string): Promise<Caller | undefined> => {
    try {
      const res = await client.verifyApiKey({ key });
      const caller: Caller = { kind: "user", teamId: res.teamId, keyId: res.keyId };
      cache.set(key, { caller, at: Date.now() });
      return caller;
    } catch (err) {
      const ce = ConnectError.from(err);
      if (ce.code === Code.Unauthenticated || ce.code === Code.NotFound || ce.code === Code.InvalidArgument) {
        cache.set(key, { caller: undefined, at: Date.now() });
        return undefined;
      }
      const old = cache.get(key);
      if (old?.caller && Date.now() - old.at < stale) return old.caller;
      throw new ConnectError("cannot verify the API key: the registry does not answer", Code.Unavailable);
    }
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
      const hit = cache.get(key);
      const age = hit ? Date.now() - hit.at : Infinity;
      if (hit && age < ttl) {
        // Refresh ahead; a failure here changes nothing (the next caller past the TTL retries).
        if (age >= ttl / 2 && hit.caller && !inflight.has(key)) start(key).catch(() => {});
        return hit.caller;
      }
      if (cache.size > 10_000) cache.clear();
      return start(key);
    },
  };
}
