// What the console says when a call fails: clients branch on the Connect code, never on text.
import { Code, ConnectError } from "@connectrpc/connect";

export function codeOf(err: unknown): Code | undefined {
  return err instanceof ConnectError ? err.code : undefined;
}

/** An RPC this server does not offer (yet): the page says so instead of failing. */
export function isUnavailable(err: unknown): boolean {
  const code = codeOf(err);
  return code === Code.Unimplemented || code === Code.NotFound;
}

export function describeError(err: unknown): string {
  const code = codeOf(err);
  switch (code) {
    case Code.Unauthenticated:
      return "The API key was not accepted (wrong, revoked or expired). Sign in again with a valid key.";
    case Code.PermissionDenied:
      return "This API key may not do that.";
    case Code.NotFound:
      return "Not found. It does not exist, or it belongs to another team.";
    case Code.Unavailable:
      return "The server cannot be reached. Is it running?";
    case Code.ResourceExhausted:
      return "Too many requests: wait a moment and try again.";
    default:
      return err instanceof ConnectError ? err.rawMessage : String(err);
  }
}
