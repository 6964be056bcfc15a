import { describe, expect, it } from "vitest";
import { TaskLogBuffer } from "./task-log-buffer.js";
import { toLogEntry } from "./task-log-capture.js";
import { LogLevel, type WorkRequest } from "@corral/proto";
import { TaskLogSender } from "./task-log-sender.js";

const a1 = { taskId: "a", attempt: 1, token: "ta" };
const b1 = { taskId: "b", attempt: 1, token: "tb" };
const rec = (msg: string) => JSON.stringify({ level: 30, time: 0, msg });

describe("the runner's task log buffer", () => {
  it("takes lines oldest first, grouped by attempt, in the order written", () => {
    const buf = new TaskLogBuffer();
    buf.add(a1, rec("a-1"));
    buf.add(b1, rec("b-1"));
    buf.add(a1, rec("a-2"));
    const taken = buf.take(1 << 20);
    expect(taken.map((t) => [t.lease.taskId, t.lines.map((l) => JSON.parse(l).msg), t.droppedCount])).toEqual([
      ["a", ["a-1", "a-2"], 0],
      ["b", ["b-1"], 0],
    ]);
    expect(buf.hasPending).toBe(false);
  });

  it("drops its oldest lines over the bound and counts them per attempt", () => {
    const buf = new TaskLogBuffer({ maxLines: 2 });
    buf.add(a1, rec("a-1"));
    buf.add(b1, rec("b-1"));
    buf.add(a1, rec("a-2"));
    buf.add(a1, rec("a-3"));
    const taken = buf.take(1 << 20);
    expect(taken.map((t) => [t.lease.taskId, t.lines.map((l) => JSON.parse(l).msg), t.droppedCount])).toEqual([
      ["a", ["a-2", "a-3"], 1],
      ["b", [], 1],
    ]);
  });

  it("a take stays under its byte bound but always moves at least one line", () => {
    const buf = new TaskLogBuffer();
    for (let i = 0; i < 3; i++) buf.add(a1, rec(`line ${i}`));
    expect(buf.take(1)[0]!.lines).toHaveLength(1);
    expect(buf.size).toBe(2);
  });

  it("before a result, every line of that attempt is taken and the others stay", () => {
    const buf = new TaskLogBuffer();
    buf.add(a1, rec("a-1"));
    buf.add(b1, rec("b-1"));
    buf.add(a1, rec("a-2"));
    const mine = buf.takeAttempt("a", 1, 1 << 20);
    expect(mine.flatMap((t) => t.lines.map((l) => JSON.parse(l).msg))).toEqual(["a-1", "a-2"]);
    expect(buf.take(1 << 20).map((t) => t.lease.taskId)).toEqual(["b"]);
  });

  it("a record becomes a LogEntry with its fields, minus the ids every task line carries", () => {
    const e = toLogEntry(JSON.stringify({ level: 40, time: 1500, msg: "tile\u0000done", jobId: "j", taskId: "t", attempt: 1, task: "x", tile: 7 }))!;
    expect(e.level).toBe(LogLevel.WARN);
    expect(e.message).toBe("tile\ufffddone");
    expect(e.fieldsJson).toBe('{"tile":7}');
    expect(Number(e.time!.seconds) * 1000 + e.time!.nanos / 1e6).toBe(1500);
    expect(toLogEntry("not json")).toBeUndefined();
  });
});

describe("the runner's task log sender", () => {
  function sender(stream: { open: boolean; ready: boolean }) {
    const sent: WorkRequest[] = [];
    const s = new TaskLogSender({
      open: () => stream.open,
      ready: () => stream.ready,
      send: (m) => {
        if (!stream.open) return false;
        sent.push(m);
        return true;
      },
      windowMs: 60_000,
    });
    const lines = () =>
      sent.flatMap((m) => (m.message.case === "taskLogs" ? m.message.value.attempts.flatMap((a) => a.lines.map((l) => `${a.lease!.taskId}:${l.message}`)) : []));
    return { s, lines };
  }

  it("sends an ended attempt's last lines ahead of its result even on a backed-up stream, and keeps a running one's", () => {
    const stream = { open: true, ready: false };
    const { s, lines } = sender(stream);
    s.line(a1, rec("a-1"));
    s.line(b1, rec("b-1"));
    s.beforeResult("a", 1);
    expect(lines()).toEqual(["a:a-1"]);
    expect(s.pendingLines).toBe(1);
    s.close();
  });

  it("keeps an ended attempt's lines while there is no stream, and sends them when one comes", () => {
    const stream = { open: false, ready: false };
    const { s, lines } = sender(stream);
    s.line(a1, rec("a-1"));
    s.beforeResult("a", 1);
    expect(lines()).toEqual([]);
    stream.open = stream.ready = true;
    s.flush();
    expect(lines()).toEqual(["a:a-1"]);
    s.close();
  });
});
