// `corral agent`'s connection to the registry: one HostService.Connect stream (AgentHello, then
// heartbeats, runner states and log lines up; launch and stop commands down), reconnected with
// backoff, with the runners supervised across reconnects. Stopping the agent stops its runners.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  ConnectRequestSchema,
  HostedRunnerState,
  HostService,
  type Capacity,
  type ConnectRequest,
  type ConnectResponse,
} from "@corral/proto";
import { backoffDelay, sdkVersion, sleep } from "@corral/sdk";
import { AsyncQueue, createAuthInterceptor } from "@corral/wire";
import { Supervisor } from "./supervisor.js";
import type { RunnerCommand } from "./runner-command.js";
import type { LaunchSpec, RunnerReport, SupervisedPhase } from "./supervisor-state.js";

/** The registry refused this agent for good (bad or revoked key, invalid hello, unknown location). */
export class AgentRefusedError extends Error {
  constructor(
    readonly code: Code,
    readonly rawMessage: string,
  ) {
    super(`the registry refused this agent: ${rawMessage} [${Code[code]}]`);
    this.name = "AgentRefusedError";
  }
}

/** Codes after which reconnecting cannot help. */
const fatalCodes = new Set([Code.Unauthenticated, Code.PermissionDenied, Code.InvalidArgument, Code.NotFound, Code.Unimplemented]);

export interface AgentOptions {
  url: string;
  apiKey: string | undefined;
  name: string;
  capacity: Capacity;
  /** A location id or name; empty: none. */
  location?: string;
  labels?: Record<string, string>;
  /** The command line of a runner launch. */
  runnerCommand(launch: LaunchSpec): RunnerCommand;
  /** How long a runner told to stop (or stopped with the agent) may drain before SIGKILL (default 30 s). */
  stopGraceMs?: number;
  /** Restart backoff of crashed runners (default 1 s doubling to 60 s, reset after a healthy minute). */
  restartBackoff?: { baseMs?: number; maxMs?: number; healthyRunMs?: number };
  /** Reconnect backoff (default 500 ms doubling to 15 s). */
  reconnect?: { baseDelayMs?: number; maxDelayMs?: number };
  /** How often new runner output is shipped (default 1 s). */
  logShipIntervalMs?: number;
  /** Heartbeat interval when the welcome names none (default 5 s). */
  heartbeatIntervalMs?: number;
  /** A ready gRPC-capable transport (tests). */
  transport?: Transport;
  /** One line per event worth a person's attention. */
  log?(line: string): void;
}

const phaseStates: Record<SupervisedPhase, HostedRunnerState> = {
  starting: HostedRunnerState.STARTING,
  running: HostedRunnerState.RUNNING,
  restarting: HostedRunnerState.RESTARTING,
  stopping: HostedRunnerState.STOPPING,
  stopped: HostedRunnerState.STOPPED,
};

/** Most messages waiting on the stream before log shipping pauses: a stalled registry costs bounded memory. */
const maxOutbox = 256;
/** Most lines in one RunnerLogLines (the contract's limit). */
const maxLinesPerBatch = 1000;

type Session = { outbox: AsyncQueue<ConnectRequest>; abort: AbortController; welcomed: boolean };

export class Agent {
  readonly supervisor: Supervisor;
  readonly #options: AgentOptions;
  readonly #transport: Transport;
  #session: Session | undefined;
  #hostId = "";
  #heartbeat: NodeJS.Timeout | undefined;
  #shipper: NodeJS.Timeout | undefined;
  /** Set when the agent stops for good. */
  readonly #closed = new AbortController();
  readonly #listeners = new Set<(event: AgentEvent) => void>();

  constructor(options: AgentOptions) {
    this.#options = options;
    this.supervisor = new Supervisor({
      command: (launch) => options.runnerCommand(launch),
      onReport: (r) => this.#report(r),
      baseBackoffMs: options.restartBackoff?.baseMs,
      maxBackoffMs: options.restartBackoff?.maxMs,
      healthyRunMs: options.restartBackoff?.healthyRunMs,
    });
    this.#transport =
      options.transport ??
      createGrpcTransport({
        baseUrl: options.url.replace(/\/+$/, ""),
        interceptors: options.apiKey ? [createAuthInterceptor(options.apiKey)] : [],
        pingIntervalMs: 15_000,
        pingTimeoutMs: 10_000,
      });
  }

  /** The id the registry gave this host (empty before the first welcome). */
  get hostId(): string {
    return this.#hostId;
  }

  get connected(): boolean {
    return this.#session?.welcomed === true;
  }

  /** Events for tests and the CLI's output: welcome, disconnect, a report sent. */
  on(listener: (event: AgentEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Runs until `signal` aborts, then stops every runner (SIGTERM, SIGKILL after the grace), tells
   * the registry, and resolves. Rejects with AgentRefusedError when the registry refuses the agent
   * (its runners are stopped first).
   */
  async run(signal: AbortSignal): Promise<void> {
    const onAbort = () => this.#closed.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    if (signal.aborted) this.#closed.abort();
    const loop = this.#loop();
    try {
      await Promise.race([loop, new Promise<void>((resolve) => this.#closed.signal.addEventListener("abort", () => resolve(), { once: true }))]);
      await this.#shutdown();
      await loop;
    } catch (err) {
      this.#closed.abort();
      await this.#shutdown();
      throw err;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  async #shutdown(): Promise<void> {
    await this.supervisor.stopAll(this.#options.stopGraceMs ?? 30_000);
    this.supervisor.close();
    const s = this.#session;
    if (s?.welcomed) this.#shipLogs(s, Number.POSITIVE_INFINITY);
    this.#stopTimers();
    if (s) {
      // Half-close so the registry sees a clean end with the last states; abort if it lingers.
      s.outbox.end();
      setTimeout(() => s.abort.abort(), 2000).unref();
    }
  }

  async #loop(): Promise<void> {
    const client = createClient(HostService, this.#transport);
    const base = this.#options.reconnect?.baseDelayMs ?? 500;
    const max = this.#options.reconnect?.maxDelayMs ?? 15_000;
    let attempt = 0;
    while (!this.#closed.signal.aborted) {
      const session: Session = { outbox: new AsyncQueue(), abort: new AbortController(), welcomed: false };
      this.#session = session;
      session.outbox.push(this.#hello());
      try {
        for await (const res of client.connect(session.outbox, { signal: session.abort.signal })) {
          this.#handle(res, session);
          if (session.welcomed) attempt = 0;
        }
      } catch (err) {
        const ce = ConnectError.from(err);
        if (fatalCodes.has(ce.code) && !this.#closed.signal.aborted) throw new AgentRefusedError(ce.code, ce.rawMessage);
        if (!this.#closed.signal.aborted) this.#log(`registry stream failed: ${ce.rawMessage} [${Code[ce.code]}]`);
      } finally {
        this.#disconnect(session);
      }
      if (this.#closed.signal.aborted) return;
      const delay = backoffDelay(attempt, base, max);
      attempt = Math.min(attempt + 1, 20);
      this.#log(`reconnecting to the registry in ${Math.round(delay)} ms`);
      await sleep(delay, this.#closed.signal).catch(() => undefined);
    }
  }

  #hello(): ConnectRequest {
    return create(ConnectRequestSchema, {
      message: {
        case: "hello",
        value: {
          name: this.#options.name,
          capacity: this.#options.capacity,
          location: this.#options.location ?? "",
          labels: this.#options.labels ?? {},
          agentVersion: sdkVersion,
          // After a reconnect: the runners still alive here, so the registry keeps rather than replaces them.
          runningRunnerIds: this.supervisor.activeIds(),
        },
      },
    });
  }

  #handle(res: ConnectResponse, session: Session): void {
    const m = res.message;
    switch (m.case) {
      case "welcome": {
        session.welcomed = true;
        this.#hostId = m.value.hostId;
        const interval = m.value.heartbeatInterval;
        const ms = interval ? Number(interval.seconds) * 1000 + Math.floor(interval.nanos / 1e6) : 0;
        this.#startTimers(session, ms > 0 ? ms : (this.#options.heartbeatIntervalMs ?? 5000));
        for (const r of this.supervisor.snapshot()) this.#send(session, r);
        this.#log(`connected to the registry as host ${m.value.hostId}`);
        this.#emit({ kind: "welcome", hostId: m.value.hostId });
        break;
      }
      case "launch": {
        const l = m.value;
        if (this.#closed.signal.aborted) break;
        this.#log(`launching runner ${l.runnerId} for cluster ${l.clusterSlug}`);
        this.supervisor.launch({
          runnerId: l.runnerId,
          clusterId: l.clusterId,
          clusterSlug: l.clusterSlug,
          apiKey: l.apiKey,
          url: l.url,
          registryUrl: l.registryUrl,
          concurrency: l.concurrency,
        });
        break;
      }
      case "stop": {
        const grace = m.value.grace;
        const graceMs = grace ? Number(grace.seconds) * 1000 + Math.floor(grace.nanos / 1e6) : (this.#options.stopGraceMs ?? 30_000);
        this.#log(`stopping runner ${m.value.runnerId}`);
        this.supervisor.stop(m.value.runnerId, graceMs);
        break;
      }
      case "error":
        if (fatalCodes.has(m.value.code as Code)) throw new ConnectError(m.value.message, m.value.code as Code);
        this.#log(`registry error: ${m.value.message} [${Code[m.value.code as Code] ?? m.value.code}]`);
        break;
      default:
        break;
    }
  }

  #report(r: RunnerReport): void {
    const s = this.#session;
    // While disconnected a report is not queued: the next welcome re-sends every runner's state.
    if (s?.welcomed) this.#send(s, r);
    this.#emit({ kind: "report", report: r });
  }

  #send(session: Session, r: RunnerReport): void {
    session.outbox.push(
      create(ConnectRequestSchema, {
        message: {
          case: "runnerState",
          value: { runnerId: r.runnerId, state: phaseStates[r.phase], pid: r.pid, restarts: r.restarts, lastExit: r.lastExit.slice(0, 256) },
        },
      }),
    );
  }

  #shipLogs(session: Session, room = maxOutbox - session.outbox.size): void {
    if (room <= 0) return;
    for (const { runnerId, lines } of this.supervisor.takeLogs(maxLinesPerBatch).slice(0, room)) {
      session.outbox.push(
        create(ConnectRequestSchema, {
          message: {
            case: "logs",
            value: {
              runnerId,
              lines: lines.map((l) => ({ time: timestampFromDate(l.time), stream: l.stream, text: l.text })),
            },
          },
        }),
      );
    }
  }

  #startTimers(session: Session, heartbeatMs: number): void {
    this.#stopTimers();
    this.#heartbeat = setInterval(() => {
      session.outbox.push(create(ConnectRequestSchema, { message: { case: "heartbeat", value: {} } }));
    }, heartbeatMs);
    this.#shipper = setInterval(() => this.#shipLogs(session), this.#options.logShipIntervalMs ?? 1000);
  }

  #stopTimers(): void {
    clearInterval(this.#heartbeat);
    clearInterval(this.#shipper);
    this.#heartbeat = undefined;
    this.#shipper = undefined;
  }

  #disconnect(session: Session): void {
    const was = session.welcomed;
    session.welcomed = false;
    this.#stopTimers();
    session.outbox.end();
    session.abort.abort();
    if (this.#session === session) this.#session = undefined;
    if (was) this.#emit({ kind: "disconnected" });
  }

  #log(line: string): void {
    this.#options.log?.(line);
  }

  #emit(event: AgentEvent): void {
    for (const l of this.#listeners) l(event);
  }
}

export type AgentEvent =
  | { kind: "welcome"; hostId: string }
  | { kind: "disconnected" }
  | { kind: "report"; report: RunnerReport };
