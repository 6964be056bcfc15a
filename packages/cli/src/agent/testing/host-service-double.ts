// A HostService for agent tests, served over real HTTP/2 by server-kit's test server: it records
// what agents send on their Connect streams and lets the test send launch and stop commands.
import { EventEmitter } from "node:events";
import { fileURLToPath } from "node:url";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  ConnectResponseSchema,
  HostedRunnerState,
  HostService,
  type ConnectRequest,
  type ConnectResponse,
  type RunnerStateChange,
} from "@corral/proto";
import { mount } from "@corral/server-kit";
import { startTestServer, type TestServer } from "@corral/server-kit/testing";
import { AsyncQueue } from "@corral/wire";

export const fakeRunnerPath = fileURLToPath(new URL("./fake-runner.mjs", import.meta.url));
export const agentKey = "corral_agentkey1_0123456789abcdef0123";

export interface AgentStream {
  /** Everything the agent sent, in order. */
  received: ConnectRequest[];
  send(message: MessageInitShape<typeof ConnectResponseSchema>["message"]): void;
  /** Ends the stream from the registry's side with an error (the agent reconnects). */
  fail(code: Code): void;
  ended: boolean;
}

export interface HostServiceDouble {
  server: TestServer;
  url: string;
  streams: AgentStream[];
  /** Resolves with the first value `probe` answers (not undefined) after any message, or rejects after `timeoutMs`. */
  until<T>(probe: () => T | undefined, what: string, timeoutMs?: number): Promise<T>;
  /** Runner states received on every stream, in order. */
  states(runnerId: string): RunnerStateChange[];
  /** Log text received for a runner. */
  logText(runnerId: string): string;
  close(): Promise<void>;
}

export async function startHostServiceDouble(options: { heartbeatMs?: number } = {}): Promise<HostServiceDouble> {
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const streams: AgentStream[] = [];
  const server = await startTestServer({
    keys: { [agentKey]: { kind: "user", teamId: "team-1", keyId: "key-1" } },
    mounts: [
      mount(HostService, {
        async *connect(requests) {
          const outbox = new AsyncQueue<ConnectResponse>();
          const stream: AgentStream = {
            received: [],
            ended: false,
            send: (message) => void outbox.push(create(ConnectResponseSchema, { message })),
            fail: (code) => outbox.end(new ConnectError("the test ends this stream", code)),
          };
          streams.push(stream);
          void (async () => {
            try {
              for await (const req of requests) {
                stream.received.push(req);
                if (req.message.case === "hello") {
                  stream.send({
                    case: "welcome",
                    value: { hostId: `host-${streams.length}`, heartbeatInterval: durationFromMs(options.heartbeatMs ?? 200) },
                  });
                }
                events.emit("message");
              }
            } catch {
              // the agent went away
            } finally {
              stream.ended = true;
              outbox.end();
              events.emit("message");
            }
          })();
          yield* outbox;
        },
      }),
    ],
  });
  const states = (runnerId: string) =>
    streams.flatMap((s) =>
      s.received.flatMap((r) => (r.message.case === "runnerState" && r.message.value.runnerId === runnerId ? [r.message.value] : [])),
    );
  return {
    server,
    url: server.url,
    streams,
    states,
    logText: (runnerId) =>
      streams
        .flatMap((s) => s.received.flatMap((r) => (r.message.case === "logs" && r.message.value.runnerId === runnerId ? r.message.value.lines : [])))
        .map((l) => `${l.stream}: ${l.text}`)
        .join("\n"),
    until<T>(probe: () => T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const v = probe();
          if (v === undefined) return;
          clearTimeout(timer);
          events.off("message", check);
          resolve(v);
        };
        const timer = setTimeout(() => {
          events.off("message", check);
          reject(new Error(`timed out waiting for ${what}`));
        }, timeoutMs);
        events.on("message", check);
        check();
      });
    },
    close: () => server.close(),
  };
}

/** The latest state of a runner, when it is `state`. */
export function lastState(double: HostServiceDouble, runnerId: string, state: HostedRunnerState): RunnerStateChange | undefined {
  const all = double.states(runnerId);
  const last = all[all.length - 1];
  return last?.state === state ? last : undefined;
}
