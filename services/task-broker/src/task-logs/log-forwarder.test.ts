// The task log forwarder against the real Redis: lines of an attempt the session holds, or held
// (its lease record names the same token), reach job-service batched; lines for an attempt the
// runner never held are dropped; a full buffer drops its oldest lines and says how many.
import { create } from "@bufbuild/protobuf";
import { LeaseRefSchema, LogEntrySchema, TaskEnvelopeSchema, type AppendTaskLogsRequest, type TaskLogs } from "@corral/proto";
import { createRedis } from "@corral/server-kit";
import { TEST_REDIS_URL, testRedisPrefix } from "@corral/server-kit/testing";
import type { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dropRedisPrefix } from "../test-support/harness.js";
import { streamKey } from "../redis/keys.js";
import { createLeaseStore, type LeaseStore } from "../redis/lease-store.js";
import { createQueueStore, type QueueStore } from "../redis/queue-store.js";
import type { RunnerSession } from "../runner-session.js";
import { testSession } from "../test-support/sessions.js";
import { createBrokerMetrics, taskLogCounts, type BrokerMetrics } from "../metrics.js";
import { createTaskLogForwarder, type TaskLogSink } from "./log-forwarder.js";

const prefix = testRedisPrefix("broker-task-logs");
const CLUSTER = "c-logs";
let redis: Redis;
let queues: QueueStore;
let leases: LeaseStore;

beforeAll(() => {
  redis = createRedis({ url: TEST_REDIS_URL, keyPrefix: prefix });
  queues = createQueueStore(redis, { recordTtlSec: 3600, channelPrefix: prefix });
  leases = createLeaseStore(redis, { doneTtlSec: 3600, channelPrefix: prefix });
});
afterAll(async () => {
  await dropRedisPrefix(prefix);
  redis.disconnect();
});

/** A sink that records what job-service would be sent. */
function recordingSink(): TaskLogSink & { calls: AppendTaskLogsRequest[] } {
  const sink = {
    calls: [] as AppendTaskLogsRequest[],
    async appendTaskLogs(request: AppendTaskLogsRequest) {
      sink.calls.push(request);
      return { refused: [] };
    },
  };
  return sink;
}

function session(id: string): RunnerSession {
  return testSession(id, { teamId: "team", cluster: { id: CLUSTER, slug: "logs" }, slots: 1 });
}

/** Leases attempt 1 of `taskId` in Redis with `token`, as a claim does. */
async function leaseInRedis(taskId: string, token: string): Promise<void> {
  await queues.enqueue([create(TaskEnvelopeSchema, { taskId, attempt: 1, jobId: "job", teamId: "team", clusterId: CLUSTER, identifier: { name: "logs", version: "v1.0" } })]);
  await queues.ensureGroups(CLUSTER, ["logs:v1.0"]);
  const entries = await queues.read("consumer", [streamKey(CLUSTER, "logs:v1.0")], 100);
  const entry = entries.find((e) => e.taskId === taskId)!;
  await queues.claim([{ entry, token, expiryMs: Date.now() + 60_000, sessionId: "old-session", brokerId: "b" }]);
}

function logs(taskId: string, token: string, messages: string[]): TaskLogs {
  return {
    $typeName: "corral.broker.v1.TaskLogs",
    attempts: [
      {
        $typeName: "corral.broker.v1.AttemptLogs",
        lease: create(LeaseRefSchema, { taskId, attempt: 1, token }),
        lines: messages.map((message) => create(LogEntrySchema, { message })),
        droppedCount: 0,
      },
    ],
  };
}

/** The broker's task log line counters as Prometheus shows them: forwarded, and dropped by reason. */
async function lineCounts(metrics: BrokerMetrics): Promise<{ forwarded: number; dropped: Record<string, number> }> {
  const forwarded = (await metrics.taskLogLinesForwarded.get()).values[0]?.value ?? 0;
  const dropped: Record<string, number> = {};
  for (const v of (await metrics.taskLogLinesDropped.get()).values) dropped[String(v.labels.reason)] = v.value;
  return { forwarded, dropped };
}

describe("task log forwarder", () => {
  it("forwards lines of an attempt the runner held on an earlier stream, and drops lines of one it never held", async () => {
    await leaseInRedis("held-before", "tok-1");
    const sink = recordingSink();
    const metrics = createBrokerMetrics();
    const forwarder = createTaskLogForwarder({ sink, leases, logger: pino({ level: "silent" }), windowMs: 1, counts: taskLogCounts(metrics) });
    const s = session("new-session");
    await forwarder.accept(s, logs("held-before", "tok-1", ["kept 1", "kept 2"]));
    await forwarder.accept(s, logs("held-before", "someone-elses-token", ["dropped"]));
    await forwarder.accept(s, logs("never-leased", "tok-1", ["dropped too"]));
    await forwarder.flushed(s);
    await forwarder.close();
    const sent = sink.calls.flatMap((c) => c.attempts);
    expect(sent.map((a) => [a.taskId, a.attempt, a.clusterId, a.lines.map((l) => l.message)])).toEqual([
      ["held-before", 1, CLUSTER, ["kept 1", "kept 2"]],
    ]);
    expect(await lineCounts(metrics)).toEqual({ forwarded: 2, dropped: { not_held: 2 } });
  });

  it("a full buffer drops its oldest lines and tells job-service how many, with the attempt's next lines", async () => {
    await leaseInRedis("chatty", "tok-2");
    let release: () => void = () => {};
    const calls: AppendTaskLogsRequest[] = [];
    // job-service is slow: the first call waits until the test lets it through.
    const sink: TaskLogSink = {
      async appendTaskLogs(request) {
        calls.push(request);
        if (calls.length === 1) await new Promise<void>((r) => (release = r));
        return { refused: [] };
      },
    };
    const metrics = createBrokerMetrics();
    const forwarder = createTaskLogForwarder({ sink, leases, logger: pino({ level: "silent" }), windowMs: 1, maxBufferedBytes: 1_000, counts: taskLogCounts(metrics) });
    const s = session("chatty-session");
    await forwarder.accept(s, logs("chatty", "tok-2", ["first"]));
    await new Promise<void>((r) => setImmediate(r));
    while (calls.length === 0) await new Promise<void>((r) => setTimeout(r, 5));
    // 20 lines of ~100 bytes each do not fit in 1,000 bytes: the oldest go.
    await forwarder.accept(s, logs("chatty", "tok-2", Array.from({ length: 20 }, (_, i) => `line ${i}`)));
    release();
    await forwarder.flushed(s);
    await forwarder.close();
    const later = calls.slice(1).flatMap((c) => c.attempts);
    const lines = later.flatMap((a) => a.lines.map((l) => l.message));
    const dropped = later.reduce((n, a) => n + a.droppedCount, 0);
    expect(dropped).toBeGreaterThan(0);
    expect(dropped + lines.length).toBe(20);
    expect(lines).toEqual(Array.from({ length: 20 }, (_, i) => `line ${i}`).slice(dropped));
    expect(await lineCounts(metrics)).toEqual({ forwarded: 1 + lines.length, dropped: { buffer_full: dropped } });
  });

  it("counts lines the runner dropped, and lines of a call job-service did not answer", async () => {
    await leaseInRedis("unlucky", "tok-3");
    const sink: TaskLogSink = {
      async appendTaskLogs() {
        throw new Error("job-service away");
      },
    };
    const metrics = createBrokerMetrics();
    const forwarder = createTaskLogForwarder({ sink, leases, logger: pino({ level: "silent" }), windowMs: 1, retryMs: 1, counts: taskLogCounts(metrics) });
    const s = session("unlucky-session");
    const batch = logs("unlucky", "tok-3", ["a", "b", "c"]);
    batch.attempts[0]!.droppedCount = 5;
    await forwarder.accept(s, batch);
    await forwarder.flushed(s);
    await forwarder.close();
    const counted = await lineCounts(metrics);
    expect(counted.forwarded).toBe(0);
    expect(counted.dropped.runner).toBe(5);
    expect(counted.dropped.send_failed).toBe(3);
  });
});
