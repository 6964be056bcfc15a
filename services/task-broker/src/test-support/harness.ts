// Test harness: a broker served over real HTTP/2 by server-kit's test server, a fixed key table,
// static clusters, and a scripted runner that speaks the Work stream.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  DispatchService,
  TaskBrokerService,
  WorkRequestSchema,
  type WorkRequest,
  type WorkResponse,
} from "@corral/proto";
import { bearer, createLogger } from "@corral/server-kit";
import { dropTestRedisPrefix, startTestServer, TEST_REDIS_URL, TEST_SERVICE_KEY, type TestServer } from "@corral/server-kit/testing";
import { AsyncQueue } from "@corral/wire";
import { createBroker, type Broker, type BrokerOptions } from "../broker.js";
import type { ClusterRef } from "../runner-session.js";
import type { ClusterResolver } from "../session-hub.js";

export const TEAM_KEY = "corral_teamone_aaaaaaaaaaaaaaaaaaaa";
export const OTHER_TEAM_KEY = "corral_teamtwo_bbbbbbbbbbbbbbbbbbbb";

/** team-1 has a default cluster and `gpu`; team-2 has its own default cluster. */
export const CLUSTERS: Record<string, Record<string, ClusterRef>> = {
  "team-1": {
    "": { id: "c-default-1", slug: "default-AAAAAAAAAAAAAA" },
    gpu: { id: "c-gpu-1", slug: "gpu" },
  },
  "team-2": { "": { id: "c-default-2", slug: "default-BBBBBBBBBBBBBB" } },
};

export const staticClusters: ClusterResolver = {
  async resolve(teamId, slugs) {
    const out = new Map<string, ClusterRef>();
    for (const s of slugs) {
      const c = CLUSTERS[teamId]?.[s];
      if (c) out.set(s, c);
    }
    return out;
  },
};

export interface BrokerServer {
  broker: Broker;
  server: TestServer;
  url: string;
  dispatch: Client<typeof DispatchService>;
  close(graceMs?: number): Promise<void>;
}

export async function startBrokerServer(
  options: Omit<BrokerOptions, "redis" | "clusters"> & { prefix: string; clusters?: ClusterResolver },
): Promise<BrokerServer> {
  const { prefix, clusters, ...rest } = options;
  const broker = createBroker({
    redis: { url: TEST_REDIS_URL, keyPrefix: prefix },
    clusters: clusters ?? staticClusters,
    logger: createLogger("task-broker", "error"),
    ...rest,
  });
  broker.start();
  await broker.ready();
  const server = await startTestServer({
    name: "task-broker",
    mounts: broker.mounts,
    keys: {
      [TEAM_KEY]: { kind: "user", teamId: "team-1", keyId: "teamone" },
      [OTHER_TEAM_KEY]: { kind: "user", teamId: "team-2", keyId: "teamtwo" },
    },
  });
  const dispatch = createClient(
    DispatchService,
    createGrpcTransport({ baseUrl: server.url, interceptors: [bearer(TEST_SERVICE_KEY)] }),
  );
  let closing: Promise<void> | undefined;
  return {
    broker,
    server,
    url: server.url,
    dispatch,
    close(graceMs = 2_000) {
      closing ??= (async () => {
        await broker.close(graceMs);
        await server.close();
      })();
      return closing;
    },
  };
}

export function runnerTransport(url: string, apiKey = TEAM_KEY): Transport {
  return createGrpcTransport({ baseUrl: url, interceptors: [bearer(apiKey)] });
}

type Case = NonNullable<WorkResponse["message"]["case"]>;
type ValueOf<C extends Case> = Extract<WorkResponse["message"], { case: C }>["value"];
type RequestInit = NonNullable<MessageInitShape<typeof WorkRequestSchema>["message"]>;

export interface TestRunner {
  readonly messages: WorkResponse[];
  /** The next message of kind `kind` not taken before (waits for it). */
  take<C extends Case>(kind: C, timeoutMs?: number): Promise<ValueOf<C>>;
  /** Every message of `kind` received so far (taken or not). */
  all<C extends Case>(kind: C): Array<ValueOf<C>>;
  send(message: RequestInit): void;
  /** Half-closes the input. */
  end(): void;
  /** Cuts the stream as a crashed runner would. */
  kill(): void;
  /** Settles when the response stream ends: undefined, or the error it ended with. */
  readonly done: Promise<ConnectError | undefined>;
}

export function connectRunner(transport: Transport, hello: MessageInitShape<typeof WorkRequestSchema>["message"] & { case: "hello" }): TestRunner {
  const client = createClient(TaskBrokerService, transport);
  const input = new AsyncQueue<WorkRequest>();
  const abort = new AbortController();
  const messages: WorkResponse[] = [];
  const taken = new Set<number>();
  const waiters = new Set<() => void>();
  input.push(create(WorkRequestSchema, { message: hello }));

  const done = (async () => {
    try {
      for await (const m of client.work(input, { signal: abort.signal })) {
        messages.push(m);
        for (const w of [...waiters]) w();
      }
      return undefined;
    } catch (err) {
      return ConnectError.from(err);
    } finally {
      for (const w of [...waiters]) w();
    }
  })();
  let finished = false;
  void done.then(() => (finished = true));

  function find(kind: Case): number {
    return messages.findIndex((m, i) => !taken.has(i) && m.message.case === kind);
  }

  return {
    messages,
    done,
    take<C extends Case>(kind: C, timeoutMs = 15_000): Promise<ValueOf<C>> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const i = find(kind);
          if (i >= 0) {
            taken.add(i);
            cleanup();
            resolve(messages[i]!.message.value as never);
          } else if (finished) {
            cleanup();
            reject(new Error(`stream ended without a ${kind} message`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no ${kind} message within ${timeoutMs} ms`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        void done.then(check);
        check();
      });
    },
    all<C extends Case>(kind: C) {
      return messages.filter((m) => m.message.case === kind).map((m) => m.message.value as ValueOf<C>);
    },
    send(message) {
      input.push(create(WorkRequestSchema, { message }));
    },
    end() {
      input.end();
    },
    kill() {
      abort.abort();
      input.end();
    },
  };
}

/** Hello for `identifiers` given as `name@vX.Y`. */
export function hello(options: {
  runnerId: string;
  identifiers: string[];
  slots?: number;
  clusterSlug?: string;
  resume?: Array<{ taskId: string; attempt: number; token: string }>;
}): MessageInitShape<typeof WorkRequestSchema>["message"] & { case: "hello" } {
  return {
    case: "hello",
    value: {
      runnerId: options.runnerId,
      clusterSlug: options.clusterSlug ?? "",
      identifiers: options.identifiers.map((s) => {
        const [name, version] = s.split("@");
        return { name: name!, version: version! };
      }),
      slots: options.slots ?? 1,
      resumeLeases: options.resume ?? [],
    },
  };
}

/** Deletes every key under a test file's prefix (afterAll). */
export function dropRedisPrefix(prefix: string): Promise<void> {
  return dropTestRedisPrefix(prefix);
}

/** Waits until `predicate` holds, polling cheaply (for state that emits no event, e.g. Redis). */
export async function eventually(predicate: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
