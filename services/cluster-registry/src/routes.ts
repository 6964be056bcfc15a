// Gateway routes (DESIGN §10): a team maps a task identifier to an HTTP endpoint that a gateway
// runner calls. The rules of a route (its URL, headers and call policy) are checked here; which
// hosts a gateway may actually reach is its operator's choice (`corral gateway --allow`).
import type { Kysely } from "kysely";
import { AlreadyExistsError, decodePageToken, InvalidArgumentError, NotFoundError, pageSize, toPage, type Page } from "@corral/server-kit";
import { isUuid, newId } from "./ids.js";
import type { RegistryDatabase } from "./store/database.js";
import { deleteRoute, findRoute, insertRoute, listRoutes, type RouteRecord } from "./store/route-repository.js";

export const DEFAULT_ROUTE_TIMEOUT_MS = 30_000;
export const MIN_ROUTE_TIMEOUT_MS = 10;
export const DEFAULT_INITIAL_BACKOFF_MS = 200;
export const DEFAULT_MAX_BACKOFF_MS = 10_000;

/**
 * Headers a route may not set: the gateway's HTTP client owns framing and the connection, and
 * `host` would let a route name one host in its URL (what --allow checks) and another in the request.
 */
const RESERVED_HEADERS = new Set(["host", "content-length", "connection", "transfer-encoding", "keep-alive", "upgrade", "te", "trailer", "expect", "proxy-connection"]);

export interface RouteInput {
  name: string;
  version: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  timeoutMs: number;
  retry: { maxAttempts: number; initialBackoffMs: number; maxBackoffMs: number };
  description: string;
}

export type RouteFields = Omit<RouteRecord, "id" | "teamId" | "createTime">;

/** The route as stored: defaults filled in, URL normalised; INVALID_ARGUMENT naming the field otherwise. */
export function routeFields(input: RouteInput): RouteFields {
  let url: URL;
  try {
    url = new URL(input.url);
  } catch {
    throw new InvalidArgumentError("url", "must be an absolute http:// or https:// URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new InvalidArgumentError("url", "only http:// and https:// URLs are allowed");
  if (url.hostname === "") throw new InvalidArgumentError("url", "must name a host");
  if (url.username !== "" || url.password !== "") {
    throw new InvalidArgumentError("url", "must not carry a user name or password (put credentials in a header, e.g. Authorization)");
  }
  const seen = new Set<string>();
  for (const name of Object.keys(input.headers)) {
    const lower = name.toLowerCase();
    if (RESERVED_HEADERS.has(lower)) throw new InvalidArgumentError(`headers["${name}"]`, "is set by the gateway's HTTP client and cannot be given");
    if (seen.has(lower)) throw new InvalidArgumentError(`headers["${name}"]`, "is given twice (header names are case-insensitive)");
    seen.add(lower);
  }
  if (input.timeoutMs !== 0 && input.timeoutMs < MIN_ROUTE_TIMEOUT_MS) {
    throw new InvalidArgumentError("timeout_ms", `must be 0 (the default, ${DEFAULT_ROUTE_TIMEOUT_MS} ms) or at least ${MIN_ROUTE_TIMEOUT_MS} ms`);
  }
  const initialBackoffMs = input.retry.initialBackoffMs || DEFAULT_INITIAL_BACKOFF_MS;
  const maxBackoffMs = input.retry.maxBackoffMs || Math.max(DEFAULT_MAX_BACKOFF_MS, initialBackoffMs);
  if (maxBackoffMs < initialBackoffMs) throw new InvalidArgumentError("retry.max_backoff_ms", "must be at least retry.initial_backoff_ms");
  return {
    name: input.name,
    version: input.version,
    method: input.method === "" ? "POST" : input.method,
    url: url.href,
    headers: input.headers,
    timeoutMs: input.timeoutMs || DEFAULT_ROUTE_TIMEOUT_MS,
    maxAttempts: Math.max(1, input.retry.maxAttempts),
    initialBackoffMs,
    maxBackoffMs,
    description: input.description,
  };
}

export interface Routes {
  create(teamId: string, input: RouteInput): Promise<RouteRecord>;
  /** The team's route; NOT_FOUND for another team's. */
  get(teamId: string, id: string): Promise<RouteRecord>;
  list(teamId: string, pageSize: number, pageToken: string): Promise<Page<RouteRecord>>;
  delete(teamId: string, id: string): Promise<void>;
}

export function createRoutes(db: Kysely<RegistryDatabase>): Routes {
  return {
    async create(teamId, input) {
      const fields = routeFields(input);
      const created = await insertRoute(db, { id: newId(), teamId, ...fields });
      if (!created) throw new AlreadyExistsError(`a route for ${fields.name}@${fields.version} already exists`);
      return created;
    },

    async get(teamId, id) {
      const found = isUuid(id) ? await findRoute(db, teamId, id) : undefined;
      if (!found) throw new NotFoundError("route", id);
      return found;
    },

    async list(teamId, requestedSize, pageToken) {
      const limit = pageSize(requestedSize);
      const rows = await listRoutes(db, teamId, decodePageToken(pageToken, isUuid), limit + 1);
      return toPage(rows, limit, (r) => r.id);
    },

    async delete(teamId, id) {
      if (!isUuid(id) || !(await deleteRoute(db, teamId, id))) throw new NotFoundError("route", id);
    },
  };
}
