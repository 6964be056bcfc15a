import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { ValidationError } from "./errors.js";
import { parseDurationMs, parseRateLimit, taskDefaultsMessage } from "./scheduling.js";
import { toTaskSubmission } from "./submission.js";
import { Task } from "./task.js";

class Fetch extends Task<{ url: string }> {
  static override identifier = { name: "test/Fetch", version: "v1.0" };
  static override scheduling = { timeout: "30s", maxRetries: 3, retry: { backoff: { initial: "1s", max: "1m", jitter: 0.2 } } };
  override execute() {}
}

describe("parseDurationMs", () => {
  it("reads milliseconds and text with a unit", () => {
    expect([parseDurationMs(1500, "x"), parseDurationMs("500ms", "x"), parseDurationMs("30s", "x"), parseDurationMs("5m", "x"), parseDurationMs("2h", "x")]).toEqual([
      1_500, 500, 30_000, 300_000, 7_200_000,
    ]);
  });

  it("names the option it cannot read", () => {
    expect(() => parseDurationMs("soon", "execution_timeout")).toThrow(ValidationError);
    expect(() => parseDurationMs("soon", "execution_timeout")).toThrow(/execution_timeout/);
    expect(() => parseDurationMs(-1, "start_delay")).toThrow(/start_delay/);
  });
});

describe("toTaskSubmission scheduling", () => {
  it("takes the task class's static defaults", () => {
    const s = toTaskSubmission(new Fetch({ url: "u" }));
    expect(s.executionTimeout).toEqual(durationFromMs(30_000));
    expect(s.maxRetries).toBe(3);
    expect(s.retryBackoff?.initialInterval).toEqual(durationFromMs(1_000));
    expect(s.retryBackoff?.maximumInterval).toEqual(durationFromMs(60_000));
    expect(s.retryBackoff?.jitter).toBe(0.2);
  });

  it("lets a submission's own options win over the class's", () => {
    const at = new Date(Date.UTC(2030, 0, 1));
    const s = toTaskSubmission(new Fetch({ url: "u" }), {
      timeout: 5_000,
      maxRetries: 1,
      retry: { backoff: { initial: "2s", multiplier: 3 } },
      notBefore: at,
      delay: "10s",
      scheduleToStartTimeout: "1m",
    });
    expect(s.executionTimeout).toEqual(durationFromMs(5_000));
    expect(s.maxRetries).toBe(1);
    expect(s.retryBackoff?.initialInterval).toEqual(durationFromMs(2_000));
    expect(s.retryBackoff?.multiplier).toBe(3);
    expect(s.notBefore).toEqual(timestampFromDate(at));
    expect(s.startDelay).toEqual(durationFromMs(10_000));
    expect(s.scheduleToStartTimeout).toEqual(durationFromMs(60_000));
  });

  it("carries a priority from 0 to 9 and refuses others, naming the field", () => {
    expect(toTaskSubmission(new Fetch({ url: "u" }), { priority: 9 }).priority).toBe(9);
    expect(toTaskSubmission(new Fetch({ url: "u" })).priority).toBe(0);
    expect(() => toTaskSubmission(new Fetch({ url: "u" }), { priority: 10 })).toThrow(/priority/);
  });

  it("refuses a jitter outside 0 to 1, naming it", () => {
    expect(() => toTaskSubmission(new Fetch({ url: "u" }), { retry: { backoff: { initial: "1s", jitter: 2 } } })).toThrow(/jitter/);
  });
});

class Invoice extends Task<{ customer: string }> {
  static override identifier = { name: "test/Invoice", version: "v1.0" };
  static override scheduling = {
    concurrency: { key: (t: Invoice) => t.input.customer, limit: 2 },
    rateLimit: { name: "mail", limit: 10, period: "1s" },
  };
  override execute() {}
}

describe("concurrency keys and rate limits", () => {
  it("reads a class default's key from the task, and keeps its limit under a submission's own key", () => {
    const s = toTaskSubmission(new Invoice({ customer: "acme" }));
    expect(s.concurrency).toMatchObject({ key: "acme", limit: 2 });
    expect(s.rateLimit).toMatchObject({ name: "mail", limit: 10, period: durationFromMs(1_000) });
    expect(toTaskSubmission(new Invoice({ customer: "acme" }), { concurrencyKey: "globex" }).concurrency).toMatchObject({ key: "globex", limit: 2 });
    expect(toTaskSubmission(new Invoice({ customer: "acme" }), { concurrency: { key: "x", limit: 5 } }).concurrency).toMatchObject({ key: "x", limit: 5 });
    expect(toTaskSubmission(new Fetch({ url: "u" }), { concurrencyKey: "k" }).concurrency).toMatchObject({ key: "k", limit: 1 });
    expect(toTaskSubmission(new Fetch({ url: "u" })).concurrency).toBeUndefined();
  });

  it("refuses an empty key, a limit of 0 and a rate period over a day, naming the option", () => {
    expect(() => toTaskSubmission(new Fetch({ url: "u" }), { concurrencyKey: "" })).toThrow(/concurrency\.key/);
    expect(() => toTaskSubmission(new Fetch({ url: "u" }), { concurrency: { key: "k", limit: 0 } })).toThrow(/concurrency\.limit/);
    expect(() => toTaskSubmission(new Fetch({ url: "u" }), { rateLimit: { name: "r", limit: 1, period: "2d" } })).toThrow(/rate_limit\.period/);
  });

  it("reads a rate limit written as name:N/period", () => {
    expect(parseRateLimit("emails:10/1s")).toEqual({ name: "emails", limit: 10, period: "1s" });
    expect(parseRateLimit("api:v2:100/m")).toEqual({ name: "api:v2", limit: 100, period: "1m" });
    expect(() => parseRateLimit("emails/10")).toThrow(/rate_limit/);
  });
});

describe("taskDefaultsMessage", () => {
  it("is nothing when the job sets no defaults", () => {
    expect(taskDefaultsMessage({})).toBeUndefined();
  });

  it("carries the job's timeout and backoff", () => {
    const d = taskDefaultsMessage({ timeout: "1m", retry: { backoff: { initial: "1s" } } })!;
    expect(d.executionTimeout).toEqual(durationFromMs(60_000));
    expect(d.retryBackoff?.initialInterval).toEqual(durationFromMs(1_000));
  });
});
