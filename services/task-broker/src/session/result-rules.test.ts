// The reporter's rules without I/O: how an outcome is acknowledged, when a started attempt is
// cancelled, and when a result for a lease not held is rejected rather than a violation.
import { create } from "@bufbuild/protobuf";
import { FailedSchema, LeaseRefSchema, OutputEncoding, ResultOutcomeSchema, ResultStatus, TaskOutputSchema } from "@corral/proto";
import { describe, expect, it } from "vitest";
import { ackOf, cancelAfterStart, resultOf, unheldRejection } from "./result-rules.js";

const outcome = (status: ResultStatus, extra: { reason?: string; canceled?: boolean } = {}) =>
  create(ResultOutcomeSchema, { taskId: "t", attempt: 1, status, ...extra });

describe("result rules", () => {
  it("pass a failed attempt's output on to job-service with its error", () => {
    const output = create(TaskOutputSchema, { encoding: OutputEncoding.JSON, data: new TextEncoder().encode('{"exitCode":4}') });
    const lease = create(LeaseRefSchema, { taskId: "t", attempt: 2, token: "tok" });
    const r = resultOf({ kind: "report", lease, message: { case: "failed", value: create(FailedSchema, { lease, error: "exit code 4", countsAsRetry: true, output }) } });
    expect(r.outcome.case).toBe("failed");
    const failed = r.outcome.value as { error: string; output?: typeof output };
    expect([r.taskId, r.attempt, failed.error, failed.output]).toEqual(["t", 2, "exit code 4", output]);
  });

  it("accept an applied result, and say why another was not", () => {
    expect(ackOf(outcome(ResultStatus.APPLIED))).toEqual({ accepted: true, reason: "" });
    expect(ackOf(outcome(ResultStatus.STALE, { reason: "a newer attempt runs" }))).toEqual({ accepted: false, reason: "a newer attempt runs" });
    expect(ackOf(outcome(ResultStatus.STALE))).toEqual({ accepted: false, reason: "STALE" });
  });

  it("cancel a started attempt whose job was canceled or that is not the running attempt", () => {
    expect(cancelAfterStart(outcome(ResultStatus.APPLIED))).toBeUndefined();
    expect(cancelAfterStart(outcome(ResultStatus.APPLIED, { canceled: true }))).toBe("job canceled");
    expect(cancelAfterStart(outcome(ResultStatus.NOT_FOUND))).toBe("task is not running this attempt");
    expect(cancelAfterStart(outcome(ResultStatus.STALE, { reason: "attempt 2 runs" }))).toBe("attempt 2 runs");
  });

  it("reject a result for a lease the stream once held, and leave any other to the violation", () => {
    expect(unheldRejection({ state: "leased", token: "k", sessionId: "other" }, "k")).toBe("lease held by another session");
    expect(unheldRejection({ state: "expired", token: "k", sessionId: "s" }, "k")).toBe("lease expired");
    expect(unheldRejection({ state: "done", token: "k", sessionId: "s" }, "other")).toBeUndefined();
    expect(unheldRejection(undefined, "k")).toBeUndefined();
  });
});
