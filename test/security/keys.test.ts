// API keys over time and under attack: a revoked key's open streams (the broker's Work stream,
// job-service's WatchJob) end with UNAUTHENTICATED and its runner's leases go to other runners; a
// flood of guessed keys from one address is throttled before it reaches the registry while a good
// key keeps working; malformed keys cost no lookup; one team cannot open Work sessions without bound.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ApiKeyService, JobService, TaskBrokerService, WorkRequestSchema, type WorkRequest, type WorkResponse } from "@corral/proto";
import { rawTask } from "@corral/sdk";
import { createServiceClient } from "@corral/server-kit";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { untilTrue } from "../faults/support/wait.js";
import { startSuite, type Suite } from "../support/suite.js";

const identifier = { name: "keys/Probe", version: "v1.0" };

/** A runner's Work stream driven by hand: Hello, then whatever the test sends. */
function openWork(url: string, key: string, options: { slots?: number; clusterSlug?: string } = {}) {
  const broker = createServiceClient(TaskBrokerService, { baseUrl: url, apiKey: key, timeoutMs: 600_000 });
  const abort = new AbortController();
  const outgoing: WorkRequest[] = [];
  let wake: (() => void) | undefined;
  async function* input() {
    yield create(WorkRequestSchema, {
      message: {
        case: "hello",
        value: { runnerId: `probe-${randomBytes(4).toString("hex")}`, clusterSlug: options.clusterSlug ?? "", identifiers: [identifier], slots: options.slots ?? 1 },
      },
    });
    while (!abort.signal.aborted) {
      while (outgoing.length > 0) yield outgoing.shift()!;
      await new Promise<void>((r) => {
        wake = r;
        abort.signal.addEventListener("abort", () => r(), { once: true });
      });
    }
  }
  const received: WorkResponse[] = [];
  const ended = (async (): Promise<{ code: Code | "ok"; message: string }> => {
    try {
      for await (const res of broker.work(input(), { signal: abort.signal })) {
        if (res.message.case === "batch") received.push(...res.message.value.messages);
        else received.push(res);
      }
      return { code: "ok", message: "" };
    } catch (err) {
      const ce = ConnectError.from(err);
      return { code: ce.code, message: ce.rawMessage };
    }
  })();
  return {
    received,
    ended,
    send(m: WorkRequest) {
      outgoing.push(m);
      wake?.();
    },
    assigned: () => received.flatMap((r) => (r.message.case === "assign" ? [r.message.value.lease!] : [])),
    welcomed: () => received.some((r) => r.message.case === "welcome"),
    close: () => abort.abort(),
  };
}

/** The registry's VerifyApiKey calls so far: the key lookups other services made. */
/**
 * The registry's VerifyApiKey calls that found no key (a key it does not know answers NOT_FOUND).
 * Calls for known keys are left out: the services re-check open streams' keys in the background.
 */
async function registryLookups(suite: Suite): Promise<number> {
  const text = await (await fetch(`${suite.registry.url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("corral_rpc_requests_total{") && line.includes('method="VerifyApiKey"') && !line.includes('code="ok"')) {
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return sum;
}

async function keyChecks(url: string, result: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`corral_key_verifications_total{result="${result}"}`));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

const randomKey = () => `corral_${randomBytes(9).toString("hex").slice(0, 12)}_${randomBytes(20).toString("hex")}`;

describe("API keys: revocation, guessing, caps", () => {
  let suite: Suite;
  let keys: ReturnType<typeof createServiceClient<typeof ApiKeyService>>;
  let jobs: ReturnType<typeof createServiceClient<typeof JobService>>;
  const newKey = async (name: string) => {
    const created = await keys.createApiKey({ name });
    return { id: created.apiKey!.id, key: created.key };
  };

  beforeAll(async () => {
    suite = await startSuite({
      label: "keys",
      env: {
        CORRAL_KEY_CACHE: "300ms",
        CORRAL_LEASE_DURATION: "3s",
        CORRAL_REAP_INTERVAL: "200ms",
        CORRAL_AUTH_FAILURE_RATE: "5",
        CORRAL_AUTH_FAILURE_BURST: "20",
        CORRAL_MAX_SESSIONS_PER_TEAM: "2",
      },
    });
    keys = createServiceClient(ApiKeyService, { baseUrl: suite.registry.url, apiKey: suite.apiKey, timeoutMs: 10_000 });
    jobs = createServiceClient(JobService, { baseUrl: suite.jobs.url, apiKey: suite.apiKey, timeoutMs: 10_000 });
  }, 120_000);

  afterAll(async () => {
    await suite?.stop();
  });

  it("ends a revoked key's Work stream with UNAUTHENTICATED and gives its task to another runner", async () => {
    const revokedKey = await newKey("runner-to-revoke");
    const otherKey = await newKey("runner-that-stays");
    const first = (await jobs.submitJob({ name: "before", tasks: [rawTask(identifier, { n: 1 })] })).job!;
    const a = openWork(suite.broker.url, revokedKey.key, { slots: 2 });
    await untilTrue("the runner gets the first task", () => a.assigned().length === 1, 30_000);
    const [firstTask] = (await jobs.listTasks({ jobId: first.id })).tasks;
    expect(a.assigned()[0]!.taskId).toBe(firstTask!.id);

    await keys.revokeApiKey({ id: revokedKey.id });
    const end = await a.ended;
    expect(end.code).toBe(Code.Unauthenticated);
    expect(end.message).toMatch(/revoked/);

    // A result sent now has no stream to go on, and a new stream with the key is refused.
    const again = openWork(suite.broker.url, revokedKey.key);
    expect((await again.ended).code).toBe(Code.Unauthenticated);

    const second = (await jobs.submitJob({ name: "after", tasks: [rawTask(identifier, { n: 2 })] })).job!;
    const [secondTask] = (await jobs.listTasks({ jobId: second.id })).tasks;
    const b = openWork(suite.broker.url, otherKey.key, { slots: 2 });
    try {
      await untilTrue("the other runner gets both tasks", () => b.assigned().length === 2, 30_000);
      const got = new Map(b.assigned().map((l) => [l.taskId, l.attempt]));
      expect(got.get(secondTask!.id)).toBe(1);
      // The revoked runner's lease expired: the next attempt.
      expect(got.get(firstTask!.id)).toBeGreaterThan(a.assigned()[0]!.attempt);
      expect(a.assigned()).toHaveLength(1);
    } finally {
      b.close();
      await b.ended;
    }
  }, 90_000);

  it("ends a revoked key's WatchJob stream with UNAUTHENTICATED", async () => {
    const watcherKey = await newKey("watcher-to-revoke");
    // Nobody serves this identifier: the job stays open while it is watched.
    const job = (await jobs.submitJob({ name: "watched", tasks: [rawTask({ name: "keys/Nobody", version: "v1.0" }, {})] })).job!;
    const watcher = createServiceClient(JobService, { baseUrl: suite.jobs.url, apiKey: watcherKey.key, timeoutMs: 600_000 });
    let first: () => void = () => {};
    const started = new Promise<void>((r) => (first = r));
    const ended = (async () => {
      try {
        for await (const _ of watcher.watchJob({ jobId: job.id })) first();
        return { code: "ok" as const, message: "" };
      } catch (err) {
        const ce = ConnectError.from(err);
        return { code: ce.code, message: ce.rawMessage };
      }
    })();
    await Promise.race([started, ended]);
    await keys.revokeApiKey({ id: watcherKey.id });
    const end = await ended;
    expect(end.code).toBe(Code.Unauthenticated);
    expect(end.message).toMatch(/revoked/);
  }, 60_000);

  it("caps one team's open Work sessions with RESOURCE_EXHAUSTED", async () => {
    const team = await suite.newTeam("capped");
    const open = [openWork(suite.broker.url, team.key), openWork(suite.broker.url, team.key)];
    try {
      await untilTrue("two sessions welcomed", () => open.every((w) => w.welcomed()), 30_000);
      const third = openWork(suite.broker.url, team.key);
      const end = await third.ended;
      expect(end.code).toBe(Code.ResourceExhausted);
      expect(end.message).toMatch(/CORRAL_MAX_SESSIONS_PER_TEAM/);
      // Another team is not held back by this one's sessions.
      const other = openWork(suite.broker.url, suite.apiKey);
      await untilTrue("another team's session is welcomed", () => other.welcomed(), 30_000);
      other.close();
      await other.ended;
    } finally {
      for (const w of open) w.close();
      await Promise.all(open.map((w) => w.ended));
    }
  }, 60_000);

  it("refuses malformed keys without asking the registry", async () => {
    const before = await registryLookups(suite);
    const transport = createGrpcTransport({ baseUrl: suite.jobs.url });
    const client = createClient(JobService, transport);
    for (const bad of ["nonsense", "corral_x_short", `corral_${"a".repeat(65)}_${"b".repeat(40)}`, "corral__abcdefghijklmnopqrstuvwxyz"]) {
      const err = await client.queryJobs({}, { headers: { authorization: `Bearer ${bad}` } }).then(() => undefined, (e: unknown) => ConnectError.from(e));
      expect(err?.code).toBe(Code.Unauthenticated);
    }
    expect(await registryLookups(suite)).toBe(before);
    expect(await keyChecks(suite.jobs.url, "malformed")).toBeGreaterThanOrEqual(4);
  });

  // Last: it leaves this address throttled for keys that were not good before.
  it("throttles a flood of guessed keys from one address while a good key keeps working", async () => {
    // The good client has used its key before the flood (a key that verified lately is never throttled).
    const good = createClient(JobService, createGrpcTransport({ baseUrl: suite.jobs.url }));
    const auth = { authorization: `Bearer ${suite.apiKey}` };
    await good.queryJobs({}, { headers: auth });
    const before = await registryLookups(suite);
    const flood = createClient(JobService, createGrpcTransport({ baseUrl: suite.jobs.url }));
    const codes: Code[] = [];
    const attempts = 600;
    let sent = 0;
    let flooding = true;
    const goodLatencies: number[] = [];
    const goodCalls = (async () => {
      while (flooding) {
        const t = performance.now();
        await good.queryJobs({}, { headers: auth });
        goodLatencies.push(performance.now() - t);
      }
    })();
    const worker = async () => {
      while (sent < attempts) {
        sent++;
        try {
          await flood.getJob({ jobId: "00000000-0000-7000-8000-000000000000" }, { headers: { authorization: `Bearer ${randomKey()}` } });
          codes.push(Code.Unknown);
        } catch (err) {
          codes.push(ConnectError.from(err).code);
        }
      }
    };
    const startedAt = performance.now();
    await Promise.all(Array.from({ length: 20 }, worker));
    const floodMs = performance.now() - startedAt;
    flooding = false;
    await goodCalls; // every good call succeeded, or this rejects

    const lookups = (await registryLookups(suite)) - before;
    const throttled = codes.filter((c) => c === Code.ResourceExhausted).length;
    const refused = codes.filter((c) => c === Code.Unauthenticated).length;
    goodLatencies.sort((x, y) => x - y);
    console.log(
      `guessed keys: ${attempts} in ${Math.round(floodMs)} ms (${Math.round((attempts / floodMs) * 1000)}/s); ` +
        `${refused} UNAUTHENTICATED after a lookup, ${throttled} RESOURCE_EXHAUSTED without one; registry lookups ${lookups}; ` +
        `good key: ${goodLatencies.length} calls, p50 ${goodLatencies[Math.floor(goodLatencies.length / 2)]?.toFixed(2)} ms, ` +
        `max ${goodLatencies.at(-1)?.toFixed(2)} ms`,
    );
    expect(refused + throttled).toBe(attempts);
    expect(throttled).toBeGreaterThan(0);
    // Once throttled, most answers stay throttled while the flood goes on (tokens trickle back).
    const late = codes.slice(attempts / 2);
    expect(late.filter((c) => c === Code.ResourceExhausted).length).toBeGreaterThan(late.length / 2);
    expect(lookups).toBeLessThan(attempts / 2);
    expect(await keyChecks(suite.jobs.url, "throttled")).toBe(throttled);
    expect(goodLatencies.length).toBeGreaterThan(0);
  }, 120_000);
});
