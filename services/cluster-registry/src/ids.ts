// Identifiers: UUIDv7 for rows (time-ordered, so paging by id is paging by creation), base62
// random strings for slugs and API keys.
import { randomBytes } from "node:crypto";
import { v7 as uuidv7 } from "uuid";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function newId(): string {
  return uuidv7();
}

/** True when `id` can be a row id; anything else cannot exist, so callers answer NOT_FOUND. */
export function isUuid(id: string): boolean {
  return UUID.test(id);
}

/** `length` uniformly random base62 characters (rejection sampling: no modulo bias). */
export function randomBase62(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 248 = 4 * 62: bytes at or above it would favour the first characters.
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export const SLUG_SUFFIX_LENGTH = 14;
const MAX_SLUG_LENGTH = 100;

/**
 * A cluster slug from its name, as Tilebox makes them: the lowercased name with every run of
 * other characters turned into `-`, then `-` and 14 random base62 characters
 * ("Production" -> "production-EifhUozDpwAJDL").
 */
export function generateSlug(name: string): string {
  const base =
    name
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, MAX_SLUG_LENGTH - SLUG_SUFFIX_LENGTH - 1)
      .replace(/-+$/, "") || "cluster";
  return `${base}-${randomBase62(SLUG_SUFFIX_LENGTH)}`;
}
