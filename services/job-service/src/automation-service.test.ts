// Automations over real HTTP/2 and Postgres, with the schedulers' clock in the test's hand: bad
// input, team scoping, cron fires exactly once per fire time (also with two replicas ticking at
// once), overlap, catch-up, pause, and directory triggers across a restart.
import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  AutomationService,
  CatchUpPolicy,
  CreateAutomationRequestSchema,
  JobService,
  OverlapPolicy,
  TaskIdentifierSchema,
  TaskPrototypeSchema,
  TriggerSchema,
  type CreateAutomationRequest,
} from "@corral/proto";
import { createServiceClient } from "@corral/server-kit";
import { startTestServer, type TestServer } from "@corral/server-kit/testing";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobService, readAutomationSettings, type JobServiceHandle } from "./component.js";
import { createJobsTestDb, createRecordingDispatcher, createTestClusters, type JobsTestDb } from "./testing/job-test-kit.js";

const userKey = "corral_teamakey_0123456789abcdefXYZ";
const otherKey = "corral_teambkey_0123456789abcdefXYZ";
let t: JobsTestDb;
let dir: string;
let clock = new Date("2026-06-01T00:00:00.000Z");
const replicas: JobServiceHandle[] = [];
let server: TestServer;

function replica(options: { realClock?: boolean } = {}): JobServiceHandle {
  const settings = readAutomationSettings({ CORRAL_AUTOMATION_DIRS: dir, CORRAL_AUTOMATION_MISFIRE_GRACE: "5s", CORRAL_AUTOMATION_SETTLE: "50ms" });
  const s = createJobService({
    db: t.db,
    clusters: createTestClusters(),
    dispatcher: createRecordingDispatcher(),
    automations: { ...settings, now: options.realClock ? undefined : () => clock, run: false, storagePollMs: 0 },
  });
  replicas.push(s);
  return s;
}

beforeAll(async () => {
  t = await createJobsTestDb("automations_rpc");
  dir = await mkdtemp(join(tmpdir(), "corral-automations-"));
  server = await startTestServer({
    mounts: replica().mounts,
    keys: {
      [userKey]: { kind: "user", teamId: "team-a", keyId: "teamakey" },
      [otherKey]: { kind: "user", teamId: "team-b", keyId: "teambkey" },
    },
  });
});
afterAll(async () => {
  await server?.close();
  for (const r of replicas) await r.close();
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

const automations = (apiKey = userKey) => createServiceClient(AutomationService, { baseUrl: server.url, apiKey });
const jobs = (apiKey = userKey) => createServiceClient(JobService, { baseUrl: server.url, apiKey });
const enc = (s: string) => new TextEncoder().encode(s);

function request(overrides: Partial<CreateAutomationRequest> & { cron?: string; tz?: string } = {}): CreateAutomationRequest {
  const { cron, tz, ...rest } = overrides;
  const req = create(CreateAutomationRequestSchema, {
    name: "nightly",
    prototype: create(TaskPrototypeSchema, { identifier: create(TaskIdentifierSchema, { name: "my/Task", version: "v1.0" }), input: enc('{"a":1}') }),
    clusterSlug: "gpu",
    triggers: [create(TriggerSchema, { kind: { case: "cron", value: { schedule: cron ?? "* * * * * *", timeZone: tz ?? "" } } })],
  });
  return Object.assign(req, rest);
}

async function failure(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail");
}

async function jobsOf(automationId: string, apiKey = userKey) {
  const res = await jobs(apiKey).queryJobs({ automationId, ascending: true, pageSize: 1000 });
  return res.jobs;
}

async function scheduledTimes(automationId: string): Promise<string[]> {
  const out: string[] = [];
  for (const j of await jobsOf(automationId)) {
    const tasks = await jobs().listTasks({ jobId: j.id, includeInput: true });
    out.push(JSON.parse(new TextDecoder().decode(tasks.tasks[0]!.input)).scheduledTime);
  }
  return out.sort();
}

const advance = (ms: number) => (clock = new Date(clock.getTime() + ms));

describe("bad input answers INVALID_ARGUMENT naming the field", () => {
  it.each([
    ["an invalid cron schedule", request({ cron: "61 * * * *" }), "triggers[0].cron.schedule"],
    ["an unknown time zone", request({ cron: "0 3 * * *", tz: "Europe/Atlantis" }), "triggers[0].cron.time_zone"],
    ["an unknown cluster", request({ clusterSlug: "nope" }), "cluster_slug"],
    [
      "an identifier without a version",
      request({ prototype: create(TaskPrototypeSchema, { identifier: create(TaskIdentifierSchema, { name: "my/Task", version: "" }) }) }),
      "prototype.identifier.version",
    ],
    [
      "an input that is not JSON",
      request({ prototype: create(TaskPrototypeSchema, { identifier: create(TaskIdentifierSchema, { name: "my/Task", version: "v1.0" }), input: enc("{nope") }) }),
      "prototype.input",
    ],
    [
      "a directory outside CORRAL_AUTOMATION_DIRS",
      request({ triggers: [create(TriggerSchema, { kind: { case: "directory", value: { path: "/etc" } } })] }),
      "triggers[0].directory.path",
    ],
    [
      "a secret given in place of a reference",
      request({
        triggers: [create(TriggerSchema, { kind: { case: "s3", value: { bucket: "data", accessKeyId: "AK", secretAccessKeyRef: "hunter2" } } })],
      }),
      "triggers[0].s3.secret_access_key_ref",
    ],
  ])("%s", async (_, req, field) => {
    const err = await failure(automations().createAutomation(req));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toContain(field);
  });
});

describe("cron triggers", () => {
  it("shows the next fire times in the automation's time zone", async () => {
    const { automation } = await automations().createAutomation(request({ cron: "30 2 * * *", tz: "Europe/Zurich", paused: true }));
    await automations().resumeAutomation({ automationId: automation!.id });
    const got = await automations().getAutomation({ automationId: automation!.id, nextFireCount: 2 });
    expect(got.automation!.nextFireTimes.map((ts) => timestampDate(ts).toISOString())).toEqual(["2026-06-01T00:30:00.000Z", "2026-06-02T00:30:00.000Z"]);
    await automations().deleteAutomation({ automationId: automation!.id });
  });

  it("each fire time submits exactly one job, carrying the time, even with two replicas ticking at once", async () => {
    const { automation } = await automations().createAutomation(request());
    const id = automation!.id;
    const [a, b] = [replica(), replica()];
    const start = clock.getTime();
    for (let i = 0; i < 5; i++) {
      advance(1_000);
      await Promise.all([a.automations.tick(), b.automations.tick(), replicas[0]!.automations.tick()]);
    }
    const expected = [1, 2, 3, 4, 5].map((s) => new Date(start + s * 1000).toISOString());
    expect(await scheduledTimes(id)).toEqual(expected);
    const all = await jobsOf(id);
    expect(all.every((j) => j.automationId === id)).toBe(true);
    const fires = (await automations().getAutomation({ automationId: id })).automation!.recentFires;
    expect(fires.map((f) => timestampDate(f.fireTime!).toISOString()).sort()).toEqual(expected);
    expect(new Set(fires.map((f) => f.jobId)).size).toBe(5);
    await automations().pauseAutomation({ automationId: id });
  });

  it("another team can neither see, change nor fire into it", async () => {
    const { automation } = await automations().createAutomation(request());
    const id = automation!.id;
    for (const call of [
      () => automations(otherKey).getAutomation({ automationId: id }),
      () => automations(otherKey).pauseAutomation({ automationId: id }),
      () => automations(otherKey).updateAutomation({ automationId: id, name: "mine" }),
      () => automations(otherKey).deleteAutomation({ automationId: id }),
    ]) {
      expect((await failure(call())).code).toBe(Code.NotFound);
    }
    expect((await automations(otherKey).listAutomations({})).automations).toEqual([]);
    advance(1_000);
    await replicas[0]!.automations.tick();
    expect(await jobsOf(id, otherKey)).toEqual([]);
    const mine = await jobsOf(id);
    expect(mine.length).toBe(1);
    expect(mine[0]!.teamId).toBe("team-a");
    await automations().deleteAutomation({ automationId: id });
  });

  it("overlap SKIP records a skipped fire while the previous job has not ended", async () => {
    const { automation } = await automations().createAutomation(request({ overlap: OverlapPolicy.SKIP }));
    const id = automation!.id;
    advance(1_000);
    await replicas[0]!.automations.tick();
    advance(1_000);
    await replicas[0]!.automations.tick();
    expect((await jobsOf(id)).length).toBe(1);
    const fires = (await automations().getAutomation({ automationId: id })).automation!.recentFires;
    expect(fires.map((f) => f.skippedReason.split(":")[0]).sort()).toEqual(["", "overlap"]);
    await automations().pauseAutomation({ automationId: id });
  });

  it.each([
    [CatchUpPolicy.SKIP_MISSED, 0],
    [CatchUpPolicy.RUN_LAST, 1],
  ])("after downtime, catch-up policy %s runs %i of the missed fire times", async (catchUp, runs) => {
    const { automation } = await automations().createAutomation(request({ catchUp }));
    const id = automation!.id;
    const from = clock.getTime();
    advance(30_000); // no replica ticked for 30 s; the grace is 5 s
    await replicas[0]!.automations.tick();
    const times = await scheduledTimes(id);
    const missed = times.filter((s) => new Date(s).getTime() < clock.getTime() - 5_000);
    expect(missed.length).toBe(runs);
    if (runs === 1) expect(missed[0]).toBe(new Date(clock.getTime() - 6_000).toISOString());
    // The fire times within the grace run, each once.
    expect(times.length - missed.length).toBe(6);
    expect(times.every((s) => new Date(s).getTime() > from)).toBe(true);
    const skipped = (await automations().getAutomation({ automationId: id })).automation!.recentFires.filter((f) => f.skippedReason !== "");
    expect(skipped.length).toBe(runs === 0 ? 1 : 0);
    await automations().pauseAutomation({ automationId: id });
  });

  it("a paused automation does not fire, and resuming does not catch up", async () => {
    const { automation } = await automations().createAutomation(request({ paused: true }));
    const id = automation!.id;
    advance(3_000);
    await replicas[0]!.automations.tick();
    expect(await jobsOf(id)).toEqual([]);
    await automations().resumeAutomation({ automationId: id });
    advance(1_000);
    await replicas[0]!.automations.tick();
    expect((await jobsOf(id)).length).toBe(1);
    await automations().pauseAutomation({ automationId: id });
  });
});

describe("directory triggers", () => {
  it("100 files (some written at once) submit 100 jobs, also across a restart in the middle", async () => {
    const watched = join(dir, "in");
    const { automation } = await automations().createAutomation(
      request({ triggers: [create(TriggerSchema, { kind: { case: "directory", value: { path: watched } } })] }),
    );
    const id = automation!.id;
    const first = replica({ realClock: true });
    await writeFiles(watched, 0, 50);
    await settleAndTick(first, id, 50);
    await first.close();
    // A new process: everything it knows is in Postgres.
    const second = replica({ realClock: true });
    await writeFiles(watched, 50, 100);
    await settleAndTick(second, id, 100);
    await settleAndTick(second, id, 100);
    const objects = new Set<string>();
    for (const j of await jobsOf(id)) {
      const tasks = await jobs().listTasks({ jobId: j.id, includeInput: true });
      objects.add(JSON.parse(new TextDecoder().decode(tasks.tasks[0]!.input)).object.location);
    }
    expect(objects.size).toBe(100);
  });
});

async function writeFiles(d: string, from: number, to: number) {
  const { mkdir } = await import("node:fs/promises");
  await mkdir(d, { recursive: true });
  // Ten at once, then one by one.
  await Promise.all(Array.from({ length: 10 }, (_, i) => writeFile(join(d, `f-${String(from + i).padStart(3, "0")}.txt`), `file ${from + i}`)));
  for (let i = from + 10; i < to; i++) await writeFile(join(d, `f-${String(i).padStart(3, "0")}.txt`), `file ${i}`);
}

/** Ticks until the automation has `n` jobs (files settle 50 ms after their last change). */
async function settleAndTick(r: JobServiceHandle, id: string, n: number) {
  for (let i = 0; i < 200; i++) {
    await r.automations.tick();
    const count = (await jobsOf(id)).length;
    if (count >= n) {
      expect(count).toBe(n);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`automation ${id} did not reach ${n} jobs`);
}
