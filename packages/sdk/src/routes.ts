// client.routes(): gateway routes, a team's mapping from a task identifier to an HTTP endpoint
// (executed by `corral gateway`, see GatewayRunner).
import { createClient, type Client as RpcClient, type Transport } from "@connectrpc/connect";
import { RouteService, type Route } from "@corral/proto";
import { rpc } from "./errors.js";
import { parseIdentifier, type TaskIdentifierInit } from "./identifier.js";
import { collectPages } from "./paginate.js";

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface RouteInput {
  /** The task identifier, `{ name, version }` or `"name@vMAJOR.MINOR"`. */
  identifier: TaskIdentifierInit | string;
  /** An http:// or https:// URL. */
  url: string;
  /** Default POST. */
  method?: HttpMethod;
  headers?: Record<string, string>;
  /** One call's limit in milliseconds (default 30 s). */
  timeoutMs?: number;
  /** Calls again after a 5xx answer, a timeout or a connection error, within one task attempt. */
  retry?: { maxAttempts?: number; initialBackoffMs?: number; maxBackoffMs?: number };
  description?: string;
}

export class RoutesClient {
  readonly #rpc: RpcClient<typeof RouteService>;

  constructor(transport: Transport) {
    this.#rpc = createClient(RouteService, transport);
  }

  /**
   * Routes tasks of an identifier to an HTTP endpoint (Mindtrace's `register_job_to_endpoint`).
   *
   * @example
   * await client.routes().create({ identifier: "echo_job@v1.0", url: "https://echo.example.com/echo/run", retry: { maxAttempts: 3 } });
   */
  async create(input: RouteInput): Promise<Route> {
    const identifier = typeof input.identifier === "string" ? parseIdentifier(input.identifier) : input.identifier;
    const res = await rpc(() =>
      this.#rpc.createRoute({
        identifier,
        url: input.url,
        method: input.method ?? "",
        headers: input.headers ?? {},
        timeoutMs: input.timeoutMs ?? 0,
        retry: {
          maxAttempts: input.retry?.maxAttempts ?? 0,
          initialBackoffMs: input.retry?.initialBackoffMs ?? 0,
          maxBackoffMs: input.retry?.maxBackoffMs ?? 0,
        },
        description: input.description ?? "",
      }),
    );
    return res.route!;
  }

  /** The team's route; NotFoundError for an unknown id or another team's route. */
  async find(id: string): Promise<Route> {
    const res = await rpc(() => this.#rpc.getRoute({ id }));
    return res.route!;
  }

  async delete(id: string): Promise<void> {
    await rpc(() => this.#rpc.deleteRoute({ id }));
  }

  /** Every route of the team, oldest first. */
  async all(options: { signal?: AbortSignal } = {}): Promise<Route[]> {
    return collectPages(async (pageToken) => {
      const res = await rpc(() => this.#rpc.listRoutes({ pageSize: 500, pageToken }, { signal: options.signal }));
      return { items: res.routes, nextPageToken: res.nextPageToken };
    });
  }
}
