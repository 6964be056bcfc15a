import { describe, expect, it } from "vitest";
import { formatLogLine } from "./log-format.js";
import { createSdkLogger } from "./logger.js";

describe("readable log lines", () => {
  it("turn a pino record into time, level, name, message and key=value fields", () => {
    const line = JSON.stringify({ level: 40, time: Date.UTC(2026, 0, 1, 12, 3, 4), pid: 1, hostname: "h", name: "corral-runner", msg: "work stream failed", code: "Unavailable", err: "connect ECONNREFUSED 127.0.0.1:7700" });
    expect(formatLogLine(line)).toBe('12:03:04 WARN  corral-runner: work stream failed code=Unavailable err="connect ECONNREFUSED 127.0.0.1:7700"');
  });

  it("show an error object by its message and pass non-JSON through", () => {
    const line = JSON.stringify({ level: 50, time: 0, msg: "refused", err: { type: "Error", message: "bad key", stack: "..." } });
    expect(formatLogLine(line)).toBe('00:00:00 ERROR refused err="bad key"');
    expect(formatLogLine("plain text\n")).toBe("plain text");
  });

  it("the SDK logger writes plain lines with format pretty and JSON without", () => {
    const pretty: string[] = [];
    createSdkLogger("corral-runner", "info", { format: "pretty", out: { write: (t: string) => pretty.push(t) } }).info({ runnerId: "r-1" }, "runner %s", "running");
    expect(pretty).toHaveLength(1);
    expect(pretty[0]).toMatch(/^\d\d:\d\d:\d\d INFO  corral-runner: runner running runnerId=r-1\n$/);
    const json: string[] = [];
    createSdkLogger("corral-runner", "info", { format: "json", out: { write: (t: string) => json.push(t) } }).info("hello");
    expect(JSON.parse(json[0]!)).toMatchObject({ msg: "hello", name: "corral-runner", level: 30 });
  });
});
