// Opaque cursor tokens: base64url JSON, checked on the way in.
import { InvalidArgumentError } from "@corral/server-kit";

export function encodePageToken(value: Record<string, string | number>): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

export function decodePageToken<T extends Record<string, string | number>>(
  token: string,
  check: (v: Record<string, unknown>) => v is T,
): T | undefined {
  if (token === "") return undefined;
  try {
    const v = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as unknown;
    if (typeof v === "object" && v !== null && check(v as Record<string, unknown>)) return v as T;
  } catch {
    // fall through
  }
  throw new InvalidArgumentError("page_token", "is not a token from an earlier answer");
}
