import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { AssignSchema, LeaseSchema, type Assign } from "@corral/proto";
import { leaseKey, RunnerState, type RunnerEffect, type TaskOutcome } from "./runner-state.js";

function assign(taskId: string, attempt = 1, name = "known"): Assign {
  return create(AssignSchema, {
    lease: create(LeaseSchema, { taskId, attempt, token: `tok-${taskId}-${attempt}` }),
    task: { taskId, jobId: "j", teamId: "team", clusterId: "c", identifier: { name, version: "v1.0" }, attempt },
  });
}

const done: TaskOutcome = { kind: "completed", display: "ok", subtasks: [], progress: [] };
const thrown: TaskOutcome = { kind: "failed", error: "boom", unrecoverable: false, countsAsRetry: true, display: "", progress: [] };

function machine(capacity = 2) {
  return new RunnerState({ capacity, canRun: (id) => id.name === "known" });
}

const sends = (effects: RunnerEffect[]) =>
  effects.flatMap((e) => (e.kind === "send" ? [e.message] : []));
const credits = (effects: RunnerEffect[]) =>
  sends(effects).flatMap((m) => (m.case === "credit" ? [m.value.n] : []));
const executes = (effects: RunnerEffect[]) => effects.flatMap((e) => (e.kind === "execute" ? [e.key] : []));
const aborts = (effects: RunnerEffect[]) => effects.flatMap((e) => (e.kind === "abort" ? [e.key] : []));

describe("RunnerState credit", () => {
  it("runs what the initial credit brings and grants a credit per freed slot", () => {
    const s = machine(2);
    expect(credits(s.onWelcome({ resumed: [] }))).toEqual([]); // slots is the initial credit
    expect(s.brokerCredit).toBe(2);
    expect(executes(s.onAssign(assign("a")))).toEqual(["a#1"]);
    expect(executes(s.onAssign(assign("b")))).toEqual(["b#1"]);
    expect(s.brokerCredit).toBe(0);
    const fx = s.onTaskFinished("a#1", done);
    expect(sends(fx).map((m) => m.case)).toEqual(["completed", "credit"]);
    expect(credits(fx)).toEqual([1]);
    const completed = sends(fx)[0]!;
    expect(completed.case === "completed" && completed.value.lease).toMatchObject({ taskId: "a", attempt: 1, token: "tok-a-1" });
    expect(completed.case === "completed" && completed.value.display).toBe("ok");
  });

  it("keeps a result until its Ack", () => {
    const s = machine(1);
    s.onWelcome({ resumed: [] });
    s.onAssign(assign("a"));
    s.onTaskFinished("a#1", thrown);
    expect(s.phaseOf("a#1")).toBe("reported");
    expect(s.pendingResult("a#1")?.case).toBe("failed");
    expect(s.isIdle()).toBe(false);
    s.onAck({ taskId: "a", attempt: 1 });
    expect(s.phaseOf("a#1")).toBeUndefined();
    expect(s.isIdle()).toBe(true);
  });

  it("depth first: a result with subtasks keeps its slot until its Ack, so the next claim sees them queued", () => {
    const s = machine(1);
    s.onWelcome({ resumed: [] });
    s.onAssign(assign("parent"));
    const withSubtasks: TaskOutcome = { ...done, subtasks: [{} as never] };
    const fx = s.onTaskFinished("parent#1", withSubtasks);
    expect(sends(fx).map((m) => m.case)).toEqual(["completed"]);
    expect(credits(s.onAck({ taskId: "parent", attempt: 1 }))).toEqual([1]);
  });

  it("depth first: a slot kept for subtasks is freed when the broker does not resume the lease", () => {
    const s = machine(1);
    s.onWelcome({ resumed: [] });
    s.onAssign(assign("parent"));
    s.onTaskFinished("parent#1", { ...done, subtasks: [{} as never] });
    s.onDisconnected();
    s.onWelcome({ resumed: [] });
    expect(s.brokerCredit).toBe(1);
    // A late Ack for the forgotten lease grants nothing more.
    expect(credits(s.onAck({ taskId: "parent", attempt: 1 }))).toEqual([]);
  });

  it("reports an unknown identifier as the runner's fault and replaces the credit", () => {
    const s = machine(1);
    s.onWelcome({ resumed: [] });
    const fx = s.onAssign(assign("x", 1, "unknown"));
    const [failed, credit] = sends(fx);
    expect(failed?.case).toBe("failed");
    expect(failed?.case === "failed" && failed.value.countsAsRetry).toBe(false);
    expect(credit?.case === "credit" && credit.value.n).toBe(1);
    expect(executes(fx)).toEqual([]);
  });

  it("queues assignments beyond its slots instead of running them, and credits nothing meanwhile", () => {
    const s = machine(1);
    s.onWelcome({ resumed: [] });
    s.onAssign(assign("a"));
    const extra = s.onAssign(assign("b")); // a broker that over-granted
    expect(executes(extra)).toEqual([]);
    expect(s.phaseOf("b#1")).toBe("queued");
    const fx = s.onTaskFinished("a#1", done);
    expect(executes(fx)).toEqual(["b#1"]);
    expect(credits(fx)).toEqual([]);
    expect(credits(s.onTaskFinished("b#1", done))).toEqual([1]);
  });

  it("ignores a duplicate delivery of a lease it holds", () => {
    const s = machine(2);
    s.onWelcome({ resumed: [] });
    s.onAssign(assign("a"));
    expect(s.onAssign(assign("a"))).toEqual([]);
    expect(s.executingCount).toBe(1);
  });
});

describe("RunnerState reconnect", () => {
  it("resumes running leases and leases awaiting Ack, re-sending their results", () => {
    const s = machine(2);
    s.onWelcome({ resumed: [] });
    s.onAssign(assign("a"));
    s.onAssign(assign("b"));
    s.onTaskFinished("a#1", done);
    s.onDisconnected();
    // Results produced while disconnected are held, not sent.
    expect(sends(s.onTaskFinished("b#1", done))).toEqual([]);
    expect(s.resumeLeases().map((l) => leaseKey(l)).sort()).toEqual(["a#1", "b#1"]);
    const fx = s.onWelcome({ resumed: [create(LeaseSchema, { taskId: "a", attempt: 1 }), create(LeaseSchema, { taskId: "b", attempt: 1 })] });
    expect(sends(fx).filter((m) => m.case === "completed").length).toBe(2);
    // Two resumed leases on two slots: the broker is assumed to hold no credit; both slots are free.
    expect(credits(fx)).toEqual([2]);
  });

  it("drops leases the broker did not resume and aborts their tasks", () => {
    const s = machine(2);
    s.onWelcome({ resumed: [] });
    s.onAssign(assign("a"));
    s.onAssign(assign("b"));
    s.onTaskFinished("b#1", done);
    s.onDisconnected();
    const fx = s.onWelcome({ resumed: [] });
    expect(aborts(fx)).toEqual(["a#1"]);
    expect(sends(fx).some((m) => m.case === "completed")).toBe(false);
    expect(s.heldCount).toBe(0);
    // The broker grants a fresh session its full slots, so nothing is added; a's code still
    // runs, and its late result is dropped.
    expect(credits(fx)).toEqual([]);
    expect(s.brokerCredit).toBe(2);
    const late = s.onTaskFinished("a#1", done);
    expect(sends(late)).toEqual([]);
    expect(s.isIdle()).toBe(true);
  });

  it("keeps a resumed running task and credits only the free slots", () => {
    const s = machine(3);
    s.onWelcome({ resumed: [] });
    s.onAssign(assign("a"));
    s.onDisconnected();
    const fx = s.onWelcome({ resumed: [create(LeaseSchema, { taskId: "a", attempt: 1 })] });
    expect(aborts(fx)).toEqual([]);
    // Assumed broker credit 3-1 = 2, one slot busy: nothing to add.
    expect(credits(fx)).toEqual([]);
    expect(s.brokerCredit).toBe(2);
  });
});

describe("RunnerState cancel and drain", () => {
  it("aborts a running task on Cancel and hands back a queued one", () => {
    const s = machine(1);
    s.onWelcome({ resumed: [] });
    s.onAssign(assign("a"));
    s.onAssign(assign("b"));
    expect(aborts(s.onCancel({ taskId: "a", attempt: 1 }, "job canceled"))).toEqual(["a#1"]);
    const fx = s.onCancel({ taskId: "b", attempt: 1 }, "job canceled");
    const failed = sends(fx)[0];
    expect(failed?.case === "failed" && failed.value.countsAsRetry).toBe(false);
    expect(s.onCancel({ taskId: "zzz", attempt: 1 }, "")).toEqual([]);
  });

  it("drains: says so, hands back queued work, takes no more and credits nothing", () => {
    const s = machine(1);
    s.onWelcome({ resumed: [] });
    s.onAssign(assign("a"));
    s.onAssign(assign("b"));
    const fx = s.startDrain();
    expect(sends(fx).map((m) => m.case)).toEqual(["draining", "failed"]);
    expect(s.startDrain()).toEqual([]);
    const late = s.onAssign(assign("c"));
    const failed = sends(late)[0];
    expect(failed?.case === "failed" && failed.value.countsAsRetry).toBe(false);
    expect(executes(late)).toEqual([]);
    const finished = s.onTaskFinished("a#1", done);
    expect(sends(finished).map((m) => m.case)).toEqual(["completed"]);
    expect(s.hasRunningTasks()).toBe(false);
  });

  it("reports tasks still running when the grace period ends as the runner's fault", () => {
    const s = machine(2);
    s.onWelcome({ resumed: [] });
    s.onAssign(assign("a"));
    s.startDrain();
    const fx = s.onGraceExpired();
    expect(aborts(fx)).toEqual(["a#1"]);
    const failed = sends(fx)[0];
    expect(failed?.case === "failed" && failed.value.countsAsRetry).toBe(false);
    // The aborted code returning later changes nothing.
    expect(sends(s.onTaskFinished("a#1", thrown))).toEqual([]);
    s.onAck({ taskId: "a", attempt: 1 });
    expect(s.isIdle()).toBe(true);
  });

  it("repeats Draining after a reconnect", () => {
    const s = machine(1);
    s.onWelcome({ resumed: [] });
    s.onAssign(assign("a"));
    s.startDrain();
    s.onDisconnected();
    const fx = s.onWelcome({ resumed: [create(LeaseSchema, { taskId: "a", attempt: 1 })] });
    expect(sends(fx).map((m) => m.case)).toEqual(["draining"]);
  });
});

describe("RunnerState registration", () => {
  const known = [{ name: "known", version: "v1.1" }];

  it("sends Reregister with an increasing revision on the open stream", () => {
    const s = machine(1);
    s.onWelcome({ resumed: [] });
    const first = s.reregister(known);
    const second = s.reregister([]);
    expect([first.revision, second.revision]).toEqual([1, 2]);
    const [message] = sends(first.effects);
    expect(message?.case).toBe("reregister");
    expect(message?.case === "reregister" && message.value.revision).toBe(1);
    expect(message?.case === "reregister" && message.value.identifiers).toMatchObject(known);
  });

  it("counts a change as applied once Reregistered of its revision arrives", () => {
    const s = machine(1);
    s.onWelcome({ resumed: [] });
    const { revision } = s.reregister(known);
    expect(s.appliedRevision).toBeLessThan(revision);
    expect(s.onReregistered(revision)).toEqual([]);
    expect(s.appliedRevision).toBe(revision);
  });

  it("a later Reregistered applies the earlier revisions too", () => {
    const s = machine(1);
    s.onWelcome({ resumed: [] });
    const a = s.reregister(known);
    const b = s.reregister([]);
    s.onReregistered(b.revision);
    expect(s.appliedRevision).toBeGreaterThanOrEqual(a.revision);
  });

  it("while disconnected sends nothing: the next Hello carries the set, and Welcome applies it", () => {
    const s = machine(1);
    const { revision, effects } = s.reregister(known);
    expect(effects).toEqual([]);
    s.onHelloSent();
    expect(sends(s.onWelcome({ resumed: [] }))).toEqual([]);
    expect(s.appliedRevision).toBe(revision);
  });

  it("a change asked for between Hello and Welcome goes out as Reregister once welcomed", () => {
    const s = machine(1);
    s.onHelloSent();
    const { revision, effects } = s.reregister(known);
    expect(effects).toEqual([]);
    const [message] = sends(s.onWelcome({ resumed: [] }));
    expect(message?.case === "reregister" && message.value).toMatchObject({ revision, identifiers: known });
    expect(s.appliedRevision).toBeLessThan(revision);
    s.onReregistered(revision);
    expect(s.appliedRevision).toBe(revision);
  });
});

describe("RunnerState live progress", () => {
  const update = { progress: [], display: "3 of 10" };

  it("sends a running task's progress with its lease", () => {
    const s = machine(1);
    s.onWelcome({ resumed: [] });
    s.onAssign(assign("a"));
    const [m] = sends(s.progressUpdate("a#1", update));
    expect(m?.case).toBe("progress");
    expect(m?.case === "progress" && m.value.lease).toMatchObject({ taskId: "a", attempt: 1, token: "tok-a-1" });
    expect(m?.case === "progress" && m.value.display).toBe("3 of 10");
  });

  it("sends nothing for a task that reported, a lease it no longer holds, or while disconnected", () => {
    const s = machine(1);
    s.onWelcome({ resumed: [] });
    s.onAssign(assign("a"));
    s.onTaskFinished("a#1", done);
    expect(sends(s.progressUpdate("a#1", update))).toEqual([]);
    expect(sends(s.progressUpdate("zz#1", update))).toEqual([]);
    s.onAssign(assign("b"));
    s.onDisconnected();
    expect(sends(s.progressUpdate("b#1", update))).toEqual([]);
  });
});
