// Who is calling: API keys resolve to a team; the internal service key marks service-to-service
// calls. Handlers read the caller from the context value set by the auth interceptor.
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { PermissionDeniedError, UnauthenticatedError } from "./errors.js";
import type { WatchedStream } from "./stream-key-watch.js";

export interface Caller {
  kind: "user" | "service";
  /** The team of a user key; empty for the service key. */
  teamId: string;
  keyId: string;
  /**
   * Set for a runner-scoped key (minted for one runner an agent launches): the only cluster it may
   * work on. Such a caller passes `requireWorker`, never `requireTeam`.
   */
  clusterId?: string;
}

export const callerKey = createContextKey<Caller | undefined>(undefined, {
  description: "the authenticated caller",
});

/** The client's address: the connection's peer, or X-Forwarded-For when the server trusts it. */
export const peerAddressKey = createContextKey<string>("", { description: "the client's address" });

/** A long-lived stream's watch of its API key (see stream-key-watch.ts). */
export type KeyRevocation = Omit<WatchedStream, "release">;

/**
 * Tells when the key a long-lived stream was opened with is revoked (its signal aborts, reason
 * UNAUTHENTICATED); undefined for unary calls and the service key. Streams listen to end at once
 * (and let go of what they hold); the server ends them anyway.
 */
export const keyRevokedKey = createContextKey<KeyRevocation | undefined>(undefined, {
  description: "tells when the stream's API key is revoked",
});

/** See `keyRevokedKey`: aborts when the stream's API key is revoked. */
export function keyRevocation(ctx: HandlerContext): AbortSignal | undefined {
  return ctx.values.get(keyRevokedKey)?.signal;
}

/** See `keyRevokedKey`: the watch itself, for a listener without an AbortSignal of its own. */
export function keyWatchOf(ctx: HandlerContext): KeyRevocation | undefined {
  return ctx.values.get(keyRevokedKey);
}

/** Resolves an API key (the whole `corral_<id>_<secret>` string) to its caller, or undefined. */
export interface ApiKeyVerifier {
  verify(key: string): Promise<Caller | undefined>;
  /**
   * Asks the source of truth again, past any cache (streams re-checking their key use it; without
   * it they call `verify`). Concurrent calls for one key share one lookup.
   */
  recheck?(key: string): Promise<Caller | undefined>;
}

export function getCaller(ctx: HandlerContext): Caller {
  const caller = ctx.values.get(callerKey);
  if (!caller) throw new UnauthenticatedError();
  return caller;
}

/**
 * The calling team; a public RPC answers PERMISSION_DENIED to the service key, which has none, and
 * to a runner-scoped key, which may only do what `requireWorker` lets it (deny by default).
 */
export function requireTeam(ctx: HandlerContext): string {
  const caller = getCaller(ctx);
  if (caller.kind !== "user") throw new PermissionDeniedError("this call needs a team's API key");
  if (caller.clusterId !== undefined) throw new PermissionDeniedError("a runner's key may only work on its cluster");
  return caller.teamId;
}

/**
 * For the calls a runner makes (the Work stream, its cluster's deployments and releases): the team,
 * and for a runner-scoped key the one cluster it may name. Check the cluster a call names with
 * `requireClusterAllowed`.
 */
export function requireWorker(ctx: HandlerContext): { teamId: string; clusterId: string | undefined } {
  const caller = getCaller(ctx);
  if (caller.kind !== "user") throw new PermissionDeniedError("this call needs a team's API key");
  return { teamId: caller.teamId, clusterId: caller.clusterId };
}

/** PERMISSION_DENIED when a runner-scoped caller names a cluster other than its own. */
export function requireClusterAllowed(worker: { clusterId: string | undefined }, clusterId: string): void {
  if (worker.clusterId !== undefined && worker.clusterId !== clusterId) {
    throw new PermissionDeniedError("a runner's key may only work on its cluster");
  }
}

export function requireService(ctx: HandlerContext): void {
  const caller = getCaller(ctx);
  if (caller.kind !== "service") throw new PermissionDeniedError("internal call: service key only");
}

/** Parses `corral_<key id>_<secret>`; undefined when the shape is wrong. */
export function parseApiKey(key: string): { keyId: string; secret: string } | undefined {
  const m = /^corral_([A-Za-z0-9]{1,64})_([A-Za-z0-9]{16,128})$/.exec(key);
  if (!m) return undefined;
  return { keyId: m[1]!, secret: m[2]! };
}
