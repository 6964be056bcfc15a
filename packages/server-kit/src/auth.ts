// Who is calling: API keys resolve to a team; the internal service key marks service-to-service
// calls. Handlers read the caller from the context value set by the auth interceptor.
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { PermissionDeniedError, UnauthenticatedError } from "./errors.js";

export interface Caller {
  kind: "user" | "service";
  /** The team of a user key; empty for the service key. */
  teamId: string;
  keyId: string;
}

export const callerKey = createContextKey<Caller | undefined>(undefined, {
  description: "the authenticated caller",
});

/** Resolves an API key (the whole `corral_<id>_<secret>` string) to its caller, or undefined. */
export interface ApiKeyVerifier {
  verify(key: string): Promise<Caller | undefined>;
}

export function getCaller(ctx: HandlerContext): Caller {
  const caller = ctx.values.get(callerKey);
  if (!caller) throw new UnauthenticatedError();
  return caller;
}

/** The calling team; a public RPC answers PERMISSION_DENIED to the service key, which has none. */
export function requireTeam(ctx: HandlerContext): string {
  const caller = getCaller(ctx);
  if (caller.kind !== "user") throw new PermissionDeniedError("this call needs a team's API key");
  return caller.teamId;
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
