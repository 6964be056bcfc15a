// Holds many idle runner streams open on one broker: each a Work stream that said Hello and then
// waits (no lease, so no heartbeat; the connections' HTTP/2 PINGs as the SDK's runner sends them),
// multiplexed over a few HTTP/2 connections (the broker allows 1,000
// streams per connection). Told by run.ts how many to open in total; answers when all are welcomed.
import { setMaxListeners } from "node:events";
import { create } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { TaskBrokerService, WorkRequestSchema, type WorkRequest } from "@corral/proto";
import { streamKeepalive } from "@corral/sdk";

const streamsPerConnection = 500;

class Inbox implements AsyncIterable<WorkRequest> {
  #items: WorkRequest[] = [];
  #wake: (() => void) | undefined;
  #closed = false;
  push(m: WorkRequest) {
    this.#items.push(m);
    this.#wake?.();
  }
  close() {
    this.#closed = true;
    this.#wake?.();
  }
  async *[Symbol.asyncIterator]() {
    for (;;) {
      while (this.#items.length > 0) yield this.#items.shift()!;
      if (this.#closed) return;
      await new Promise<void>((r) => (this.#wake = r));
      this.#wake = undefined;
    }
  }
}

const url = process.env.BENCH_BROKER_URL!;
const apiKey = process.env.BENCH_API_KEY!;
const clients: Array<Client<typeof TaskBrokerService>> = [];
const inboxes: Inbox[] = [];
const abort = new AbortController();
setMaxListeners(0, abort.signal);

function clientFor(index: number) {
  const c = Math.floor(index / streamsPerConnection);
  while (clients.length <= c) {
    const transport = createGrpcTransport({
      baseUrl: url,
      ...streamKeepalive,
      interceptors: [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${apiKey}`);
          return next(req);
        },
      ],
    });
    clients.push(createClient(TaskBrokerService, transport));
  }
  return clients[c]!;
}

function open(index: number): Promise<void> {
  const inbox = new Inbox();
  inboxes.push(inbox);
  inbox.push(
    create(WorkRequestSchema, {
      message: {
        case: "hello",
        value: {
          runnerId: `idle-${process.pid}-${index}`,
          identifiers: [{ name: "bench/Idle", version: "v1.0" }],
          slots: 1,
          sdkVersion: "bench",
        },
      },
    }),
  );
  return new Promise<void>((resolve, reject) => {
    let welcomed = false;
    void (async () => {
      try {
        for await (const res of clientFor(index).work(inbox, { signal: abort.signal })) {
          if (res.message.case === "welcome" && !welcomed) {
            // Like the SDK's runner, which heartbeats only while it holds leases: these hold none.
            welcomed = true;
            resolve();
          }
        }
      } catch (err) {
        if (!welcomed) reject(err);
      }
    })();
  });
}

process.on("message", (m: { type?: string; total?: number }) => {
  if (m?.type === "open") {
    void (async () => {
      const from = inboxes.length;
      // Open in waves so the broker's Hello path (cluster lookup, presence) is not flooded at once.
      for (let i = from; i < m.total!; i += 200) {
        await Promise.all(Array.from({ length: Math.min(200, m.total! - i) }, (_, j) => open(i + j)));
      }
      process.send?.({ type: "opened", total: inboxes.length });
    })().catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
  }
  if (m?.type === "stop") {
    for (const i of inboxes) i.close();
    abort.abort();
    setTimeout(() => process.exit(0), 200);
  }
});
process.on("disconnect", () => process.exit(0));
process.send?.({ type: "ready" });
