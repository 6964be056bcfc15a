// Opaque cursors for list RPCs: base64url JSON holding the last key of the previous page.
import { InvalidArgumentError } from "./errors.js";

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

export function pageSize(requested: number): number {
  if (requested <= 0) return DEFAULT_PAGE_SIZE;
  return Math.min(requested, MAX_PAGE_SIZE);
}

export function encodePageToken(after: string): string {
  return Buffer.from(JSON.stringify({ a: after }), "utf8").toString("base64url");
}

/** The key to continue after, undefined for the first page; a token we did not make is INVALID_ARGUMENT. */
export function decodePageToken(token: string, isValidKey: (key: string) => boolean = () => true): string | undefined {
  if (token === "") return undefined;
  let after: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(token)) throw new Error("not base64url");
    after = (JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { a?: unknown }).a;
  } catch (err) {
    throw new InvalidArgumentError("page_token", "not a page token from a previous response", { cause: err });
  }
  if (typeof after !== "string" || after === "" || !isValidKey(after)) {
    throw new InvalidArgumentError("page_token", "not a page token from a previous response");
  }
  return after;
}

export interface Page<T> {
  items: T[];
  /** Empty on the last page. */
  nextPageToken: string;
}

/** A page of rows fetched with `limit + 1`: the rows to return and the token for the next page. */
export function toPage<T>(rows: T[], limit: number, keyOf: (row: T) => string): Page<T> {
  if (rows.length <= limit) return { items: rows, nextPageToken: "" };
  const items = rows.slice(0, limit);
  return { items, nextPageToken: encodePageToken(keyOf(items[items.length - 1]!)) };
}
