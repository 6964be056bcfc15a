// For this service's tests: a raw HostService.Connect client behaving like `corral agent` (the real
// agent is its own package): it says hello, heartbeats, records the commands it gets, and reports
// its runners RUNNING on launch and STOPPED on stop.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { CapacitySchema, ConnectRequestSchema, HostedRunnerState, type ConnectRequest, type HostService, type LaunchRunner, type StopRunner } from "@corral/proto";
import { CommandQueue } from "./command-queue.js";

export interface FakeAgentOptions {
  name: string;
  cpuCores: number;
  memoryBytes?: bigint;
  gpuCount?: number;
  gpuType?: string;
  location?: string;
  /** Report RUNNING as soon as a launch arrives (default true). */
  autoRun?: boolean;
  runningRunnerIds?: string[];
  /**
   * What a launched runner does once RUNNING: connect to a broker, which reports it ONLINE
   * (NodeService.ReportPresence). The registry counts a runner as running only then.
   */
  connect?: (launch: LaunchRunner) => Promise<void>;
}

export class FakeAgent {
  readonly launches: LaunchRunner[] = [];
  readonly stops: StopRunner[] = [];
  readonly running = new Set<string>();
  hostId = "";
  ended: unknown = undefined;
  done: Promise<void>;
  readonly #out = new CommandQueue<ConnectRequest>(100_000);
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(client: Client<typeof HostService>, readonly options: FakeAgentOptions) {
    this.send({
      case: "hello",
      value: {
        name: options.name,
        capacity: create(CapacitySchema, {
          cpuCores: options.cpuCores,
          memoryBytes: options.memoryBytes ?? 64n * 1024n ** 3n,
          gpuCount: options.gpuCount ?? 0,
          gpuType: options.gpuType ?? "",
        }),
        location: options.location ?? "",
        agentVersion: "fake-0",
        runningRunnerIds: options.runningRunnerIds ?? [],
      },
    });
    this.done = (async () => {
      try {
        for await (const res of client.connect(this.#out)) {
          const m = res.message;
          if (m.case === "welcome") {
            this.hostId = m.value.hostId;
            this.#heartbeat = setInterval(() => this.send({ case: "heartbeat", value: {} }), 100);
          } else if (m.case === "launch") {
            this.launches.push(m.value);
            if (this.options.autoRun !== false) {
              this.report(m.value.runnerId, HostedRunnerState.RUNNING);
              await this.options.connect?.(m.value);
            }
          } else if (m.case === "stop") {
            this.stops.push(m.value);
            this.report(m.value.runnerId, HostedRunnerState.STOPPED);
          }
        }
      } catch (err) {
        this.ended = err;
      } finally {
        clearInterval(this.#heartbeat);
      }
    })();
  }

  send(message: MessageInitShape<typeof ConnectRequestSchema>["message"]): void {
    this.#out.push(create(ConnectRequestSchema, { message }), () => new Error("fake agent overflow"));
  }

  report(runnerId: string, state: HostedRunnerState): void {
    if (state === HostedRunnerState.RUNNING) this.running.add(runnerId);
    if (state === HostedRunnerState.STOPPED) this.running.delete(runnerId);
    this.send({ case: "runnerState", value: { runnerId, state, pid: 1000, restarts: 0, lastExit: "" } });
  }

  /** Ends the stream as a dying agent would (the registry sees it gone). */
  async close(): Promise<void> {
    clearInterval(this.#heartbeat);
    this.#out.end();
    await this.done;
  }
}

/** Polls until `check` holds (waiting for an event the registry makes; no fixed sleeps). */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
