import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { RetryBackoffSchema, TaskDefaultsSchema } from "@corral/proto";
import { describe, expect, it } from "vitest";
import { task } from "../testing/job-test-kit.js";
import { backoffDelayMs, backoffJson, isDue, scheduleOf, startDeadline, taskDefaultsJson, waitReason } from "./scheduling.js";

const now = new Date(1_000_000);
const policy = { initialMs: 1_000, multiplier: 2, maxMs: 10_000, jitter: 0 };

describe("backoffDelayMs", () => {
  it("grows by the multiplier from the initial interval and stops at the maximum", () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelayMs(policy, n))).toEqual([1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
  });

  it("does not overflow on a huge retry number", () => {
    expect(backoffDelayMs(policy, 100_000)).toBe(10_000);
  });

  it("takes off at most the jitter share, drawn at random", () => {
    const j = { ...policy, jitter: 0.5 };
    expect(backoffDelayMs(j, 3, () => 0)).toBe(4_000);
    expect(backoffDelayMs(j, 3, () => 0.5)).toBe(3_000);
    expect(backoffDelayMs(j, 3, () => 0.999999)).toBe(2_000);
  });
});

describe("backoffJson", () => {
  it("reads an unset multiplier as 2 and an unset maximum as 100 times the initial interval", () => {
    expect(backoffJson(create(RetryBackoffSchema, { initialInterval: durationFromMs(500) }))).toEqual({
      initialMs: 500,
      multiplier: 2,
      maxMs: 50_000,
      jitter: 0,
    });
  });

  it("is no policy without an initial interval", () => {
    expect(backoffJson(create(RetryBackoffSchema, { multiplier: 3 }))).toBeNull();
  });
});

describe("scheduleOf", () => {
  const defaults = taskDefaultsJson(
    create(TaskDefaultsSchema, { executionTimeout: durationFromMs(5_000), scheduleToStartTimeout: durationFromMs(60_000) }),
  );

  it("takes the task's own settings over the job's defaults", () => {
    const s = scheduleOf(task("a", { executionTimeout: durationFromMs(1_000) }), defaults, now);
    expect(s.exec_timeout_ms).toBe(1_000);
    expect(s.start_timeout_ms).toBe(60_000);
  });

  it("starts at the later of not_before and now + start_delay", () => {
    const later = new Date(now.getTime() + 9_000);
    expect(scheduleOf(task("a", { startDelay: durationFromMs(3_000), notBefore: timestampFromDate(later) }), null, now).not_before).toEqual(later);
    expect(scheduleOf(task("a", { startDelay: durationFromMs(30_000), notBefore: timestampFromDate(later) }), null, now).not_before).toEqual(
      new Date(now.getTime() + 30_000),
    );
  });

  it("starts now when not_before has passed", () => {
    expect(scheduleOf(task("a", { notBefore: timestampFromDate(new Date(0)) }), null, now).not_before).toBeNull();
  });
});

describe("due times and deadlines", () => {
  it("is due at its not_before, not a millisecond earlier", () => {
    expect(isDue(new Date(now.getTime() + 1), now)).toBe(false);
    expect(isDue(now, now)).toBe(true);
    expect(isDue(null, now)).toBe(true);
  });

  it("counts the schedule-to-start timeout from the start time when that is later", () => {
    expect(startDeadline(0, null, now)).toBeNull();
    expect(startDeadline(1_000, null, now)).toEqual(new Date(now.getTime() + 1_000));
    expect(startDeadline(1_000, new Date(now.getTime() + 5_000), now)).toEqual(new Date(now.getTime() + 6_000));
  });

  it("says why a queued task waits", () => {
    expect(waitReason({ waiting_deps: 2, not_before: null, start_deadline: null }, now)).toBe("waits for 2 dependencies");
    expect(waitReason({ waiting_deps: 0, not_before: new Date(now.getTime() + 1), start_deadline: null }, now)).toBe(
      `delayed until ${new Date(now.getTime() + 1).toISOString()}`,
    );
    expect(waitReason({ waiting_deps: 0, not_before: null, start_deadline: null }, now)).toBe("waits for a runner");
  });
});
