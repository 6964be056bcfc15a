// An Enqueue's envelopes are stored in Redis as the bytes they arrived in (not decoded and encoded
// again), and a runner gets those bytes in its Assign.
import http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { EnqueueResponseSchema, TaskEnvelopeSchema } from "@corral/proto";
import { TEST_REDIS_URL, TEST_SERVICE_KEY, testRedisPrefix } from "@corral/server-kit/testing";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { streamKey } from "./redis/keys.js";
import { createQueueStore } from "./redis/queue-store.js";
import { createTestLedger } from "./test-support/test-ledger.js";
import { CLUSTERS, connectRunner, dropRedisPrefix, hello, runnerTransport, startBrokerServer, type BrokerServer, type TestRunner } from "./test-support/harness.js";

const DEFAULT = CLUSTERS["team-1"]![""]!.id;
const prefix = testRedisPrefix("broker-envelope-bytes");
let srv: BrokerServer;
let redis: Redis;
const runners: TestRunner[] = [];

beforeAll(async () => {
  srv = await startBrokerServer({ prefix, ledger: createTestLedger(), leaseDurationMs: 10_000, pollIntervalMs: 300 });
  redis = new Redis(TEST_REDIS_URL, { keyPrefix: prefix });
});

afterAll(async () => {
  for (const r of runners) r.kill();
  await srv.close();
  redis.disconnect();
  await dropRedisPrefix(prefix);
});

/** A valid envelope written by hand with its fields out of the canonical order: an encoder would write other bytes. */
function reorderedEnvelope(taskId: string): Uint8Array {
  const identifier = new BinaryWriter().tag(1, WireType.LengthDelimited).string("bytes").tag(2, WireType.LengthDelimited).string("v1.0").finish();
  return new BinaryWriter()
    .tag(8, WireType.LengthDelimited).bytes(new TextEncoder().encode('{"n":1}'))
    .tag(7, WireType.Varint).uint32(1)
    .tag(6, WireType.LengthDelimited).bytes(identifier)
    .tag(4, WireType.LengthDelimited).string(DEFAULT)
    .tag(3, WireType.LengthDelimited).string("team-1")
    .tag(2, WireType.LengthDelimited).string("job-bytes")
    .tag(1, WireType.LengthDelimited).string(taskId)
    .finish();
}

/** DispatchService.Enqueue over gRPC with a request body written by hand. */
async function enqueueRaw(url: string, envelopes: Uint8Array[]): Promise<number> {
  const body = new BinaryWriter();
  for (const e of envelopes) body.tag(1, WireType.LengthDelimited).bytes(e);
  const message = body.finish();
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  const session = http2.connect(url);
  try {
    return await new Promise<number>((resolve, reject) => {
      const req = session.request({
        ":method": "POST",
        ":path": "/corral.broker.v1.DispatchService/Enqueue",
        "content-type": "application/grpc",
        te: "trailers",
        authorization: `Bearer ${TEST_SERVICE_KEY}`,
      });
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("trailers", (t) => {
        if (t["grpc-status"] !== "0") reject(new Error(`Enqueue answered ${String(t["grpc-status"])}: ${String(t["grpc-message"])}`));
      });
      req.on("end", () => {
        const out = Buffer.concat(chunks);
        resolve(out.length >= 5 ? fromBinary(EnqueueResponseSchema, out.subarray(5)).enqueuedCount : -1);
      });
      req.on("error", reject);
      req.end(frame);
    });
  } finally {
    session.close();
  }
}

describe("envelope bytes", () => {
  it("stores an Enqueue's envelopes as they arrived, and assigns them so", async () => {
    const sent = [reorderedEnvelope("t-bytes-1"), reorderedEnvelope("t-bytes-2")];
    expect(Buffer.from(toBinary(TaskEnvelopeSchema, fromBinary(TaskEnvelopeSchema, sent[0]!)))).not.toEqual(Buffer.from(sent[0]!));
    expect(await enqueueRaw(srv.url, sent)).toBe(2);
    const entries = await redis.xrange(streamKey(DEFAULT, "bytes:v1.0"), "-", "+");
    const stored = entries.map(([, fields]) => Buffer.from(fields[fields.indexOf("task") + 1]!, "base64"));
    expect(stored).toEqual(sent.map((b) => Buffer.from(b)));

    const r = connectRunner(runnerTransport(srv.url), hello({ runnerId: "r-bytes", identifiers: ["bytes@v1.0"], slots: 2 }));
    runners.push(r);
    await r.take("welcome");
    const assigned = [await r.take("assign"), await r.take("assign")];
    expect(assigned.map((a) => a.task?.taskId).sort()).toEqual(["t-bytes-1", "t-bytes-2"]);
    expect(new TextDecoder().decode(assigned[0]!.task!.input)).toBe('{"n":1}');
  });

  it("encodes an envelope made in process (or parsed without its bytes kept) as before", async () => {
    const envelope = create(TaskEnvelopeSchema, {
      taskId: "t-bytes-3",
      jobId: "job-bytes",
      teamId: "team-1",
      clusterId: DEFAULT,
      identifier: { name: "bytes2", version: "v1.0" },
      attempt: 1,
    });
    await createQueueStore(redis, { recordTtlSec: 60, channelPrefix: prefix }).enqueue([envelope]);
    const entries = await redis.xrange(streamKey(DEFAULT, "bytes2:v1.0"), "-", "+");
    expect(Buffer.from(entries[0]![1][entries[0]![1].indexOf("task") + 1]!, "base64")).toEqual(Buffer.from(toBinary(TaskEnvelopeSchema, envelope)));
  });
});
