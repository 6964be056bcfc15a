// The broker's Work protocol rules, one test per rule, without a network or Redis.
import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { RunnerKind, WorkRequestSchema, type WorkRequest } from "@corral/proto";
import { InvalidArgumentError } from "@corral/server-kit";
import { describe, expect, it } from "vitest";
import { decide, decideInBatch, helloQueues, type SessionView } from "./session-protocol.js";

const limits = { maxQueuesPerSession: 8 };
const active: SessionView = { state: "active", kind: RunnerKind.DIRECT, credit: 2, maxCredit: 4, revision: 0 };
const request = (message: WorkRequest["message"]) => create(WorkRequestSchema, { message });
const ids = (...specs: string[]) =>
  specs.map((s) => {
    const [name, version] = s.split("@");
    return { name: name!, version: version! };
  });
const reregister = (revision: number, ...specs: string[]) =>
  request({ case: "reregister", value: { $typeName: "corral.broker.v1.Reregister", identifiers: ids(...specs) as never, revision } });

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return (err as InvalidArgumentError).message;
  }
  return undefined;
}

describe("Hello", () => {
  it("a direct runner must name at least one identifier", () => {
    expect(fieldOf(() => helloQueues({ identifiers: [], kind: RunnerKind.DIRECT }, limits))).toMatch(/hello\.identifiers/);
    expect(fieldOf(() => helloQueues({ identifiers: [], kind: RunnerKind.UNSPECIFIED }, limits))).toMatch(/hello\.identifiers/);
  });

  it("a release or gateway runner may name none and reads nothing until it reregisters", () => {
    expect(helloQueues({ identifiers: [], kind: RunnerKind.RELEASE }, limits)).toEqual([]);
    expect(helloQueues({ identifiers: [], kind: RunnerKind.GATEWAY }, limits)).toEqual([]);
  });

  it("every minor up to the registered one is readable, within maxQueuesPerSession", () => {
    expect(helloQueues({ identifiers: ids("a@v1.2") as never, kind: RunnerKind.DIRECT }, limits)).toEqual(["a:v1.0", "a:v1.1", "a:v1.2"]);
    expect(fieldOf(() => helloQueues({ identifiers: ids("a@v1.9") as never, kind: RunnerKind.DIRECT }, limits))).toMatch(/hello\.identifiers/);
  });
});

describe("live progress", () => {
  it("progress of a lease is forwarded, never answered", () => {
    const lease = { taskId: "t", attempt: 1, token: "x" };
    const d = decide(active, request({ case: "progress", value: { lease, progress: [], display: "half" } as never }), limits);
    expect(d).toMatchObject({ kind: "progress", progress: { lease, display: "half" } });
  });

  it("progress without its lease is a violation", () => {
    expect(decide(active, request({ case: "progress", value: { progress: [], display: "" } as never }), limits)).toMatchObject({
      kind: "violation",
      code: Code.InvalidArgument,
    });
  });
});

describe("messages after Hello", () => {
  it("a second Hello is a violation", () => {
    expect(decide(active, request({ case: "hello", value: {} as never }), limits)).toMatchObject({ kind: "violation", code: Code.FailedPrecondition });
  });

  it("credit is granted up to twice the slots, beyond is RESOURCE_EXHAUSTED", () => {
    expect(decide(active, request({ case: "credit", value: { n: 2 } as never }), limits)).toEqual({ kind: "grantCredit", n: 2 });
    expect(decide(active, request({ case: "credit", value: { n: 3 } as never }), limits)).toMatchObject({
      kind: "violation",
      code: Code.ResourceExhausted,
    });
  });

  it("credit from a draining session is ignored", () => {
    expect(decide({ ...active, state: "draining" }, request({ case: "credit", value: { n: 1 } as never }), limits)).toEqual({ kind: "none" });
  });

  it("a closed session's messages are ignored", () => {
    expect(decide({ ...active, state: "closed" }, request({ case: "heartbeat", value: {} as never }), limits)).toEqual({ kind: "none" });
  });

  it("a heartbeat extends the session's leases", () => {
    expect(decide(active, request({ case: "heartbeat", value: {} as never }), limits)).toEqual({ kind: "heartbeat" });
  });

  it("a result without its lease is a violation; with it, it is reported", () => {
    expect(decide(active, request({ case: "completed", value: {} as never }), limits)).toMatchObject({ kind: "violation", code: Code.InvalidArgument });
    const lease = { taskId: "t", attempt: 1, token: "x" };
    expect(decide(active, request({ case: "failed", value: { lease } as never }), limits)).toMatchObject({ kind: "report", lease });
  });

  it("Draining stops an active session from taking work, once", () => {
    expect(decide(active, request({ case: "draining", value: {} as never }), limits)).toEqual({ kind: "drain" });
    expect(decide({ ...active, state: "draining" }, request({ case: "draining", value: {} as never }), limits)).toEqual({ kind: "none" });
  });

  it("an empty message is a violation", () => {
    expect(decide(active, request({ case: undefined }), limits)).toMatchObject({ kind: "violation", code: Code.InvalidArgument });
  });

  it("a batch cannot hold Hello or another batch", () => {
    const batch = decide(active, request({ case: "batch", value: { messages: [request({ case: "heartbeat", value: {} as never })] } as never }), limits);
    expect(batch).toMatchObject({ kind: "batch" });
    expect(decideInBatch(active, request({ case: "hello", value: {} as never }), limits)).toMatchObject({ kind: "violation", message: /Hello/ });
    expect(decideInBatch(active, request({ case: "batch", value: { messages: [] } as never }), limits)).toMatchObject({
      kind: "violation",
      message: /another batch/,
    });
  });
});

describe("Reregister", () => {
  it("replaces the readable queues with the new identifiers' and carries its revision", () => {
    expect(decide(active, reregister(1, "b@v2.1"), limits)).toEqual({
      kind: "reregister",
      identifiers: ids("b@v2.1"),
      queues: ["b:v2.0", "b:v2.1"],
      revision: 1,
    });
  });

  it("may name no identifier: the session then reads nothing", () => {
    expect(decide({ ...active, revision: 3 }, reregister(4), limits)).toMatchObject({ kind: "reregister", queues: [], revision: 4 });
  });

  it("a revision not above the last applied is a violation", () => {
    expect(decide({ ...active, revision: 2 }, reregister(2, "a@v1.0"), limits)).toMatchObject({ kind: "violation", code: Code.InvalidArgument });
    expect(decide({ ...active, revision: 2 }, reregister(1, "a@v1.0"), limits)).toMatchObject({ kind: "violation", code: Code.InvalidArgument });
    expect(decide(active, reregister(0, "a@v1.0"), limits)).toMatchObject({ kind: "violation" });
  });

  it("has the same limit as Hello: more than maxQueuesPerSession readable versions is a violation", () => {
    expect(decide(active, reregister(1, "a@v1.9"), limits)).toMatchObject({ kind: "violation", code: Code.InvalidArgument });
  });

  it("a bad version is a violation naming the field", () => {
    expect(decide(active, reregister(1, "a@1.0"), limits)).toMatchObject({ kind: "violation", message: /version/ });
  });
});

describe("TaskLogs", () => {
  it("task log lines go to the log forwarder, also from a draining session and inside a batch; a closed session's are ignored", () => {
    const logs = request({ case: "taskLogs", value: { $typeName: "corral.broker.v1.TaskLogs", attempts: [] } });
    expect(decide(active, logs, limits).kind).toBe("taskLogs");
    expect(decide({ ...active, state: "draining" }, logs, limits).kind).toBe("taskLogs");
    expect(decideInBatch(active, logs, limits).kind).toBe("taskLogs");
    expect(decide({ ...active, state: "closed" }, logs, limits).kind).toBe("none");
  });
});
