// Isolation between teams, over every service: team A's key cannot read, change, cancel or run team
// B's clusters, locations, hardware, configurations, nodes, keys, jobs and tasks (by their real ids
// or guessed ones), a runner of team A cannot join team B's cluster, user keys cannot call internal
// RPCs, a revoked key stops working on every service, and no key appears in the services' logs.
import { Code, ConnectError, type Client as ConnectClient } from "@connectrpc/connect";
import { create, type DescService } from "@bufbuild/protobuf";
import {
  ApiKeyService,
  ClusterService,
  ConfigurationService,
  RouteService,
  DispatchService,
  HardwareService,
  JobService,
  JobState,
  LocationService,
  NodeService,
  TaskBrokerService,
  TaskLedgerService,
  TaskLogIngestService,
  TaskLogService,
  TaskState,
  WorkRequestSchema,
} from "@corral/proto";
import { Runner, Task, createSdkLogger, rawTask } from "@corral/sdk";
import { createServiceClient } from "@corral/server-kit";
import { v7 as uuidv7 } from "uuid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSuite, type Suite } from "../support/suite.js";
import { untilTrue } from "../faults/support/wait.js";

class Shared extends Task<{ team: string }> {
  static override identifier = { name: "isolation/Shared", version: "v1.0" };
  static ran: string[] = [];
  override execute() {
    Shared.ran.push(this.input.team);
  }
}

async function code(p: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await p;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

/** Opens a Work stream, sends Hello and returns the code the broker answers (or "ok" on Welcome). */
async function helloCode(url: string, key: string, clusterSlug: string): Promise<Code | "ok"> {
  const broker = createServiceClient(TaskBrokerService, { baseUrl: url, apiKey: key, timeoutMs: 10_000 });
  const abort = new AbortController();
  async function* input() {
    yield create(WorkRequestSchema, {
      message: { case: "hello", value: { runnerId: "iso-probe", clusterSlug, identifiers: [{ name: "isolation/Shared", version: "v1.0" }], slots: 1 } },
    });
    await new Promise((r) => abort.signal.addEventListener("abort", r));
  }
  try {
    for await (const res of broker.work(input(), { signal: abort.signal })) {
      if (res.message.case === "welcome") return "ok";
      if (res.message.case === "error") return res.message.value.code as Code;
    }
    return Code.Unknown;
  } catch (err) {
    return ConnectError.from(err).code;
  } finally {
    abort.abort();
  }
}

describe("isolation between teams", () => {
  let suite: Suite;
  let teamB: { teamId: string; key: string };
  const keysSeen: string[] = [];
  const clients = <S extends DescService>(service: S, url: () => string, key: string): ConnectClient<S> =>
    createServiceClient(service, { baseUrl: url(), apiKey: key, timeoutMs: 10_000 });
  let b: {
    routeId: string;
    clusterSlug: string;
    locationId: string;
    hardwareId: string;
    configuration: string;
    keyId: string;
    jobId: string;
    taskId: string;
    nodeId: string;
  };
  let runnerB: Runner | undefined;

  beforeAll(async () => {
    suite = await startSuite({ label: "isolation", env: { LOG_LEVEL: "debug", CORRAL_KEY_CACHE: "1s" } });
    teamB = await suite.newTeam("team-b");
    keysSeen.push(suite.apiKey, teamB.key, suite.serviceKey);
    const reg = (s: DescService) => createServiceClient(s, { baseUrl: suite.registry.url, apiKey: teamB.key, timeoutMs: 10_000 });
    const cluster = (await (reg(ClusterService) as ConnectClient<typeof ClusterService>).createCluster({ name: "b-secret" })).cluster!;
    const location = (await (reg(LocationService) as ConnectClient<typeof LocationService>).createLocation({ name: "b-loc", provider: "aws", region: "eu-west-1" })).location!;
    const hardware = (await (reg(HardwareService) as ConnectClient<typeof HardwareService>).createHardware({ name: "b-hw", cpuCores: 2, memoryBytes: 1n << 30n })).hardware!;
    const configuration = (await (reg(ConfigurationService) as ConnectClient<typeof ConfigurationService>).createConfiguration({ name: "b-config" })).configuration!;
    const created = await (reg(ApiKeyService) as ConnectClient<typeof ApiKeyService>).createApiKey({ name: "b-second" });
    keysSeen.push(created.key);
    const jobsB = createServiceClient(JobService, { baseUrl: suite.jobs.url, apiKey: teamB.key, timeoutMs: 10_000 });
    const job = (await jobsB.submitJob({ name: "b-job", clusterSlug: cluster.slug, tasks: [rawTask(Shared.identifier, { team: "b" })] })).job!;
    const tasks = (await jobsB.listTasks({ jobId: job.id })).tasks;
    // A runner of team B on another cluster of B, so B has a node without touching b-secret's queue.
    const other = (await (reg(ClusterService) as ConnectClient<typeof ClusterService>).createCluster({ name: "b-nodes" })).cluster!;
    runnerB = new Runner({ url: suite.broker.url, apiKey: teamB.key, cluster: other.slug, tasks: [Shared], logger: createSdkLogger("iso", "error") });
    const welcomed = new Promise<void>((r) => runnerB!.on("welcome", r));
    void runnerB.runForever({ handleSignals: false });
    await welcomed;
    const nodes = reg(NodeService) as ConnectClient<typeof NodeService>;
    const nodeId = await (async () => {
      for (;;) {
        const n = (await nodes.listNodes({ clusterSlug: other.slug })).nodes[0];
        if (n) return n.id;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const route = (await (reg(RouteService) as ConnectClient<typeof RouteService>).createRoute({ identifier: { name: "b/route", version: "v1.0" }, url: "https://b.example/run" })).route!;
    b = {
      routeId: route.id,
      clusterSlug: cluster.slug,
      locationId: location.id,
      hardwareId: hardware.id,
      configuration: configuration.name,
      keyId: created.apiKey!.id,
      jobId: job.id,
      taskId: tasks[0]!.id,
      nodeId,
    };
  });
  afterAll(async () => {
    await runnerB?.stop();
    await suite?.stop();
  });

  it("hides team B's registry objects from team A (by real and guessed ids)", async () => {
    const key = suite.apiKey;
    const url = () => suite.registry.url;
    const clusters = clients(ClusterService, url, key);
    const locations = clients(LocationService, url, key);
    const hardware = clients(HardwareService, url, key);
    const configurations = clients(ConfigurationService, url, key);
    const nodes = clients(NodeService, url, key);
    const keys = clients(ApiKeyService, url, key);
    const routes = clients(RouteService, url, key);
    const guess = uuidv7();
    const notFound: Array<[string, () => Promise<unknown>]> = [
      ["GetCluster", () => clusters.getCluster({ slug: b.clusterSlug })],
      ["UpdateCluster", () => clusters.updateCluster({ slug: b.clusterSlug, description: "mine now" })],
      ["DeleteCluster", () => clusters.deleteCluster({ slug: b.clusterSlug })],
      ["GetCluster guessed", () => clusters.getCluster({ slug: "b-secret-AAAAAAAAAAAAAA" })],
      ["GetLocation", () => locations.getLocation({ id: b.locationId })],
      ["UpdateLocation", () => locations.updateLocation({ id: b.locationId, name: "mine" })],
      ["GetLocation guessed", () => locations.getLocation({ id: guess })],
      ["DeleteLocation", () => locations.deleteLocation({ id: b.locationId })],
      ["GetHardware", () => hardware.getHardware({ id: b.hardwareId })],
      ["DeleteHardware", () => hardware.deleteHardware({ id: b.hardwareId })],
      ["GetHardware guessed", () => hardware.getHardware({ id: guess })],
      ["GetConfiguration", () => configurations.getConfiguration({ name: b.configuration })],
      ["DeleteConfiguration", () => configurations.deleteConfiguration({ name: b.configuration })],
      ["GetNode", () => nodes.getNode({ id: b.nodeId })],
      ["ListNodes of B's cluster", () => nodes.listNodes({ clusterSlug: b.clusterSlug })],
      ["ListRunningNodes of B's cluster", () => nodes.listRunningNodes({ clusterSlug: b.clusterSlug })],
      ["RevokeApiKey", () => keys.revokeApiKey({ id: b.keyId })],
      ["GetRoute", () => routes.getRoute({ id: b.routeId })],
      ["DeleteRoute", () => routes.deleteRoute({ id: b.routeId })],
    ];
    for (const [what, p] of notFound) expect(await code(p()), what).toBe(Code.NotFound);
    // Lists show only A's own objects.
    expect((await clusters.listClusters({})).clusters.map((c) => c.slug)).not.toContain(b.clusterSlug);
    expect((await locations.listLocations({})).locations.map((l) => l.id)).not.toContain(b.locationId);
    expect((await hardware.listHardware({})).hardware.map((h) => h.id)).not.toContain(b.hardwareId);
    expect((await configurations.listConfigurations({})).configurations.map((c) => c.name)).not.toContain(b.configuration);
    expect((await keys.listApiKeys({})).apiKeys.map((k) => k.id)).not.toContain(b.keyId);
    expect((await routes.listRoutes({})).routes.map((r) => r.id)).not.toContain(b.routeId);
    // B's objects are untouched.
    const own = clients(ClusterService, url, teamB.key);
    expect((await own.getCluster({ slug: b.clusterSlug })).cluster?.description).toBe("");
    expect((await clients(LocationService, url, teamB.key).getLocation({ id: b.locationId })).location?.id).toBe(b.locationId);
    expect((await clients(HardwareService, url, teamB.key).getHardware({ id: b.hardwareId })).hardware?.id).toBe(b.hardwareId);
    expect(await code(clients(ApiKeyService, url, teamB.key).listApiKeys({}))).toBe("ok");
    expect((await clients(RouteService, url, teamB.key).getRoute({ id: b.routeId })).route?.id).toBe(b.routeId);
  });

  it("hides team B's jobs and tasks from team A, and refuses B's cluster for A's submissions", async () => {
    const jobs = clients(JobService, () => suite.jobs.url, suite.apiKey);
    const logs = clients(TaskLogService, () => suite.jobs.url, suite.apiKey);
    const guess = uuidv7();
    const calls: Array<[string, () => Promise<unknown>]> = [
      ["GetJob", () => jobs.getJob({ jobId: b.jobId })],
      ["GetJobProgress", () => jobs.getJobProgress({ jobId: b.jobId })],
      ["ListTasks", () => jobs.listTasks({ jobId: b.jobId })],
      ["ListTasks by parent", () => jobs.listTasks({ jobId: b.jobId, parentId: b.taskId })],
      ["CancelJob", () => jobs.cancelJob({ jobId: b.jobId })],
      ["RetryJob", () => jobs.retryJob({ jobId: b.jobId })],
      ["CloneJob", () => jobs.cloneJob({ jobId: b.jobId })],
      ["VisualizeJob", () => jobs.visualizeJob({ jobId: b.jobId })],
      ["GetJobSpans", () => jobs.getJobSpans({ jobId: b.jobId })],
      ["GetJob guessed", () => jobs.getJob({ jobId: guess })],
      ["CancelJob guessed", () => jobs.cancelJob({ jobId: guess })],
      ["SubmitJob to B's cluster", () => jobs.submitJob({ name: "steal", clusterSlug: b.clusterSlug, tasks: [rawTask(Shared.identifier, { team: "a" })] })],
      [
        "WatchJob",
        async () => {
          for await (const _ of jobs.watchJob({ jobId: b.jobId })) break;
        },
      ],
      ["ListTaskLogs", () => logs.listTaskLogs({ jobId: b.jobId })],
      ["ListTaskLogs of a task", () => logs.listTaskLogs({ jobId: b.jobId, taskId: b.taskId, attempt: 1 })],
      [
        "FollowJobLogs",
        async () => {
          for await (const _ of logs.followJobLogs({ jobId: b.jobId })) break;
        },
      ],
    ];
    for (const [what, p] of calls) expect(await code(p()), what).toBe(Code.NotFound);
    expect((await jobs.queryJobs({})).jobs.map((j) => j.id)).not.toContain(b.jobId);
    const jobsB = clients(JobService, () => suite.jobs.url, teamB.key);
    const job = (await jobsB.getJob({ jobId: b.jobId })).job!;
    expect(job.canceled).toBe(false);
    expect(job.state).toBe(JobState.SUBMITTED);
  });

  it("keeps team A's runners off team B's cluster and tasks", async () => {
    expect(await helloCode(suite.broker.url, suite.apiKey, b.clusterSlug)).toBe(Code.NotFound);
    expect(await helloCode(suite.broker.url, suite.apiKey, "b-secret-AAAAAAAAAAAAAA")).toBe(Code.NotFound);
    // A runner of A serving the same task identifier runs A's job and never B's task.
    const runnerA = new Runner({ url: suite.broker.url, apiKey: suite.apiKey, tasks: [Shared], logger: createSdkLogger("iso", "error"), idleMs: 300 });
    const jobsA = clients(JobService, () => suite.jobs.url, suite.apiKey);
    const jobA = (await jobsA.submitJob({ name: "a-job", tasks: [rawTask(Shared.identifier, { team: "a" })] })).job!;
    const done = runnerA.runForever({ handleSignals: false });
    await untilTrue("A's job completes", async () => (await jobsA.getJob({ jobId: jobA.id })).job?.state === JobState.COMPLETED, 30_000);
    await runnerA.stop();
    await done;
    expect(Shared.ran).not.toContain("b");
    const tasksB = await clients(JobService, () => suite.jobs.url, teamB.key).listTasks({ jobId: b.jobId });
    expect(tasksB.tasks[0]!.state).toBe(TaskState.QUEUED);
  });

  it("refuses internal RPCs to user keys on every service", async () => {
    const key = suite.apiKey;
    const calls: Array<[string, () => Promise<unknown>]> = [
      ["VerifyApiKey", () => clients(ApiKeyService, () => suite.registry.url, key).verifyApiKey({ key: teamB.key })],
      ["ResolveClusters", () => clients(ClusterService, () => suite.registry.url, key).resolveClusters({ teamId: teamB.teamId, slugs: [b.clusterSlug] })],
      ["ReportPresence", () => clients(NodeService, () => suite.registry.url, key).reportPresence({ reports: [] })],
      ["ReportResults", () => clients(TaskLedgerService, () => suite.jobs.url, key).reportResults({ results: [] })],
      ["AcknowledgeDispatch", () => clients(TaskLedgerService, () => suite.jobs.url, key).acknowledgeDispatch({ tasks: [] })],
      ["ResyncDispatch", () => clients(TaskLedgerService, () => suite.jobs.url, key).resyncDispatch({})],
      ["AppendTaskLogs", () => clients(TaskLogIngestService, () => suite.jobs.url, key).appendTaskLogs({ attempts: [] })],
      ["Enqueue", () => clients(DispatchService, () => suite.broker.url, key).enqueue({ tasks: [] })],
      ["Revoke", () => clients(DispatchService, () => suite.broker.url, key).revoke({ teamId: teamB.teamId, jobId: b.jobId })],
      ["GetQueueStats", () => clients(DispatchService, () => suite.broker.url, key).getQueueStats({})],
      ["ListSessions", () => clients(DispatchService, () => suite.broker.url, key).listSessions({})],
    ];
    for (const [what, p] of calls) expect(await code(p()), what).toBe(Code.PermissionDenied);
  });

  it("stops a revoked key on every service", async () => {
    const keys = clients(ApiKeyService, () => suite.registry.url, suite.apiKey);
    const created = await keys.createApiKey({ name: "to-revoke" });
    keysSeen.push(created.key);
    const probes = {
      registry: () => code(clients(ClusterService, () => suite.registry.url, created.key).getCluster({})),
      jobs: () => code(clients(JobService, () => suite.jobs.url, created.key).queryJobs({})),
      broker: () => helloCode(suite.broker.url, created.key, ""),
    };
    for (const [service, probe] of Object.entries(probes)) expect(await probe(), service).toBe("ok");
    await keys.revokeApiKey({ id: created.apiKey!.id });
    // Other services trust a verified key for the key cache time (1 s here), then ask again.
    for (const [service, probe] of Object.entries(probes)) {
      await untilTrue(`${service} refuses the revoked key`, async () => (await probe()) === Code.Unauthenticated, 15_000);
    }
    for (const [service, probe] of Object.entries(probes)) expect(await probe(), service).toBe(Code.Unauthenticated);
  });

  it("never writes a key to the services' logs", async () => {
    const logs = [suite.registry, suite.jobs, suite.broker].map((p) => p.output()).join("\n");
    expect(logs.length).toBeGreaterThan(1000); // debug logging was on: every RPC was logged
    for (const key of keysSeen) {
      const secret = key.slice(key.lastIndexOf("_") + 1);
      expect(logs.includes(secret), `a key secret appears in the logs`).toBe(false);
    }
  });
});
