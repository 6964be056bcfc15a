// A gateway: a runner whose tasks are its team's routes. It lists the routes (again every few
// seconds, registering changes on the live Work stream) and executes each assigned task by calling
// the route's endpoint under the operator's egress policy (egress-policy.ts).
import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { RunnerKind, type Assign, type Route } from "@corral/proto";
import { toApiError } from "../errors.js";
import { formatIdentifier, type TaskIdentifierInit } from "../identifier.js";
import { createSdkLogger, type Logger } from "../logger.js";
import { RoutesClient } from "../routes.js";
import { Runner, type RunnerLifecycle, type RunnerOptions } from "../runner/runner.js";
import type { TaskOutcome } from "../runner/runner-state.js";
import { maxOutputBytesFromEnv } from "../task-output.js";
import type { ScriptOptions } from "../tasks/script-policy.js";
import { backoffDelay, createTransport, sleep } from "../transport.js";
import { createEgressPolicy, type AllowEntry, type EgressPolicy } from "./egress-policy.js";
import { executeRoute, type GatewayRoute } from "./route-call.js";
import { RouteTable } from "./route-table.js";

export interface GatewayRunnerOptions extends Omit<RunnerOptions, "tasks" | "executor" | "kind" | keyof ScriptOptions> {
  /**
   * Hosts the gateway may call: `api.example.com`, `api.example.com:8443`, `*.example.com`, `*`
   * (any public host), an address or CIDR (`10.0.0.5:8080`, `10.0.0.0/8`). Loopback, private and
   * link-local addresses are called only when an address entry covers them, whatever name led there.
   */
  allow: readonly (string | AllowEntry)[];
  /** Transport for RouteService calls (default: built from url and apiKey). */
  apiTransport?: Transport;
  /** How often the routes are listed again (default 5 s). */
  refreshMs?: number;
  /** Largest answer body stored as an output (default CORRAL_MAX_OUTPUT_BYTES, 1 MiB). */
  maxOutputBytes?: number;
}

export function toGatewayRoute(r: Route): GatewayRoute {
  return {
    id: r.id,
    name: r.identifier?.name ?? "",
    version: r.identifier?.version ?? "",
    method: r.method,
    url: r.url,
    headers: { ...r.headers },
    timeoutMs: r.timeoutMs,
    maxAttempts: Math.max(1, r.retry?.maxAttempts ?? 1),
    initialBackoffMs: r.retry?.initialBackoffMs ?? 200,
    maxBackoffMs: r.retry?.maxBackoffMs ?? 10_000,
  };
}

/** Errors after which listing again cannot help. */
const fatalCodes = new Set([Code.Unauthenticated, Code.PermissionDenied]);

/**
 * Executes the team's routes on a cluster. Create it with `client.gateway(...)`.
 *
 * @example
 * const gateway = client.gateway({ cluster: "testing-CvufcSxcC9SKfe", allow: ["echo.example.com"], concurrency: 16 });
 * await gateway.runForever(); // until SIGTERM or stop()
 */
export class GatewayRunner {
  readonly runner: Runner;
  readonly policy: EgressPolicy;
  readonly #routes: RoutesClient;
  readonly #logger: Logger;
  readonly #refreshMs: number;
  readonly #maxOutputBytes: number;
  readonly #closed = new AbortController();
  #table = new RouteTable([]);
  #loaded = false;
  #refreshing: Promise<void> | undefined;

  constructor(options: GatewayRunnerOptions) {
    // Throws AllowListError on a bad entry, before anything connects.
    this.policy = createEgressPolicy(options.allow);
    this.#refreshMs = options.refreshMs ?? 5_000;
    this.#maxOutputBytes = options.maxOutputBytes ?? maxOutputBytesFromEnv();
    const logger = options.logger ?? createSdkLogger("corral-gateway");
    const { allow: _allow, apiTransport, refreshMs: _refresh, maxOutputBytes: _max, ...runnerOptions } = options;
    this.runner = new Runner({
      ...runnerOptions,
      logger,
      kind: RunnerKind.GATEWAY,
      executor: {
        identifiers: () => this.#table.identifiers(),
        canRun: (id) => this.#table.resolve(id) !== undefined,
        execute: (_key, assign, abort) => this.#execute(assign, abort.signal),
      },
    });
    this.#logger = logger.child({ runnerId: this.runner.id });
    this.#routes = new RoutesClient(
      apiTransport ?? createTransport({ baseUrl: options.url ?? process.env.CORRAL_URL ?? "http://127.0.0.1:7700", apiKey: options.apiKey ?? process.env.CORRAL_API_KEY }),
    );
  }

  get id(): string {
    return this.runner.id;
  }

  get cluster(): string {
    return this.runner.cluster;
  }

  get lifecycle(): RunnerLifecycle {
    return this.runner.lifecycle;
  }

  /** The identifiers served now (one per route). */
  get identifiers(): TaskIdentifierInit[] {
    return this.#table.identifiers();
  }

  /** The routes served now. */
  get routes(): readonly GatewayRoute[] {
    return this.#table.routes;
  }

  /** Lists the routes now and registers any change on the live stream; resolves once the broker applied it. */
  async refresh(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#load(await this.#routes.all(options))) await this.runner.reregister(options);
  }

  /** Takes a listing; true when it changed what the gateway serves. */
  #load(routes: Route[]): boolean {
    const next = new RouteTable(routes.map(toGatewayRoute));
    const changed = next.fingerprint !== this.#table.fingerprint;
    const first = !this.#loaded;
    this.#loaded = true;
    if (changed || first) {
      this.#table = next;
      this.#logger.info({ routes: next.routes.map((r) => `${formatIdentifier(r)} -> ${r.method} ${r.url}`) }, "serving %d route(s)", next.routes.length);
    }
    return changed;
  }

  /** Lists the routes, then runs tasks until stop(), SIGTERM/SIGINT or the signal aborts. */
  async runForever(options: { signal?: AbortSignal; handleSignals?: boolean } = {}): Promise<void> {
    // The first list before the Hello, so the gateway registers its routes from the start.
    await this.#firstList();
    this.#refreshing ??= this.#refreshLoop();
    try {
      await this.runner.runForever(options);
    } finally {
      this.#close();
      await this.#refreshing;
    }
  }

  /** Drains (calls under way finish), then stops listing routes. */
  async stop(): Promise<void> {
    await this.runner.stop();
    this.#close();
    await this.#refreshing;
  }

  #close(): void {
    this.#closed.abort();
  }

  async #firstList(): Promise<void> {
    try {
      // No Reregister: the stream is not open yet, and its Hello carries the routes.
      this.#load(await this.#routes.all({ signal: this.#closed.signal }));
    } catch (err) {
      if (fatalCodes.has(ConnectError.from(err).code)) throw toApiError(err);
      // The loop tries again; the gateway connects meanwhile, serving nothing yet.
      this.#logger.warn({ err: ConnectError.from(err).rawMessage }, "could not list the routes; trying again");
    }
  }

  async #refreshLoop(): Promise<void> {
    let failures = 0;
    while (!this.#closed.signal.aborted) {
      const wait = failures === 0 ? this.#refreshMs : backoffDelay(failures, 1_000, 30_000);
      await sleep(wait, this.#closed.signal).catch(() => undefined);
      if (this.#closed.signal.aborted) return;
      try {
        await this.refresh({ signal: this.#closed.signal });
        failures = 0;
      } catch (err) {
        if (this.#closed.signal.aborted) return;
        const ce = ConnectError.from(err);
        if (fatalCodes.has(ce.code)) {
          this.#logger.error({ err: toApiError(err) }, "cannot list the team's routes: stopping");
          void this.runner.stop();
          return;
        }
        failures += 1;
        this.#logger.warn({ code: Code[ce.code], err: ce.rawMessage }, "could not list the routes");
      }
    }
  }

  async #execute(assign: Assign, signal: AbortSignal): Promise<TaskOutcome> {
    const env = assign.task!;
    const route = this.#table.resolve(env.identifier!);
    if (!route) {
      // Deleted since the broker assigned it: another gateway (or this one, later) takes it, no retry counted.
      return { kind: "failed", error: `no route serves ${formatIdentifier(env.identifier!)} here now`, unrecoverable: false, countsAsRetry: false, display: "", progress: [] };
    }
    const outcome = await executeRoute(route, env.input, { policy: this.policy, signal, maxOutputBytes: this.#maxOutputBytes });
    if (outcome.kind === "failed") this.#logger.warn({ taskId: env.taskId, route: route.id, error: outcome.error }, "gateway task failed");
    return outcome;
  }
}
