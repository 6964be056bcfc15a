// The provisioning commands (cluster create --wait, scale, get, manifests; host list|get; runner
// logs) against an in-process router: arguments to requests, output, exit codes.
import { describe, expect, it } from "vitest";
import { tmpdir } from "node:os";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createRouterTransport, type ConnectRouter } from "@connectrpc/connect";
import {
  ClusterSchema,
  ClusterService,
  ClusterState,
  HostedRunnerState,
  HostService,
  HostState,
  type Cluster,
  type UpdateClusterRequest,
} from "@corral/proto";
import { Client } from "@corral/sdk";
import { parse, parseAllDocuments } from "yaml";
import { runCli } from "../run.js";
import { ExitCode } from "../exit-codes.js";
import type { Io } from "../output.js";

/** States GetCluster answers in turn for the "etl" cluster; the last one repeats. */
let script: Array<Partial<Cluster>> = [];
const updates: UpdateClusterRequest[] = [];

function cluster(fields: Partial<Cluster>): Cluster {
  return create(ClusterSchema, {
    id: "0190aaaa-0000-7000-8000-000000000001",
    slug: "etl-AAAAAAAAAAAAAA",
    name: "etl",
    spec: { runnerCount: 3, runnerCpuCores: 2, runnerMemoryBytes: 4n * 1024n ** 3n },
    ...fields,
  } as never);
}

function routes(router: ConnectRouter) {
  router.service(ClusterService, {
    createCluster: (req) => ({ cluster: cluster({ name: req.name, spec: req.spec, state: ClusterState.PENDING, desiredRunners: req.spec?.runnerCount ?? 0 }), created: true }),
    getCluster: () => ({ cluster: cluster(script.length > 1 ? script.shift()! : (script[0] ?? {})) }),
    stopCluster: (req) => ({ cluster: cluster({ slug: req.slug, state: ClusterState.STOPPING, desiredRunners: 0, runningRunners: 3 }) }),
    startCluster: (req) => ({ cluster: cluster({ slug: req.slug, state: ClusterState.PROVISIONING, desiredRunners: 3 }) }),
    updateCluster(req) {
      updates.push(req);
      return { cluster: cluster({ spec: { runnerCount: req.spec?.runnerCount } as never, state: ClusterState.PROVISIONING, desiredRunners: req.spec?.runnerCount ?? 0 }) };
    },
  });
  router.service(HostService, {
    listHosts: () => ({
      hosts: [
        {
          id: "h-1",
          name: "gpu-01",
          state: HostState.ONLINE,
          capacity: { cpuCores: 8, memoryBytes: 32n * 1024n ** 3n, gpuCount: 2, gpuType: "A100" },
          used: { cpuCores: 4, memoryBytes: 8n * 1024n ** 3n },
          runners: [{ runnerId: "r-1" }, { runnerId: "r-2" }],
        },
      ],
    }),
    getHost: (req) => {
      if (req.host !== "gpu-01") throw new ConnectError(`host ${JSON.stringify(req.host)} not found`, Code.NotFound);
      return {
        host: {
          id: "h-1",
          name: "gpu-01",
          state: HostState.ONLINE,
          capacity: { cpuCores: 8, memoryBytes: 32n * 1024n ** 3n },
          used: { cpuCores: 2, memoryBytes: 4n * 1024n ** 3n },
          labels: { zone: "a" },
          runners: [{ runnerId: "r-1", clusterSlug: "etl-AAAAAAAAAAAAAA", state: HostedRunnerState.RESTARTING, restarts: 2, lastExit: "signal SIGKILL", capacity: { cpuCores: 2 } }],
        },
      };
    },
    getRunnerLogs: (req) => ({
      lines: [
        { time: timestampFromDate(new Date("2026-12-04T10:00:00Z")), stream: "stdout", text: `runner ${req.runnerId} up (tail ${req.tail})` },
        { time: timestampFromDate(new Date("2026-12-04T10:00:01Z")), stream: "stderr", text: "warn \x1b[31mred\x1b[0m" },
      ],
      dropped: 5n,
    }),
  });
}

async function cli(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (s) => void out.push(s), err: (s) => void err.push(s), isTTY: false };
  const code = await runCli(args, { io, env: {}, cwd: tmpdir(), createClient: () => new Client({ transport: createRouterTransport(routes) }) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("corral cluster (provisioning)", () => {
  it("create --wait shows runners coming up and the READY cluster", async () => {
    script = [
      { state: ClusterState.PROVISIONING, desiredRunners: 3, runningRunners: 1 },
      { state: ClusterState.PROVISIONING, desiredRunners: 3, runningRunners: 2 },
      { state: ClusterState.READY, desiredRunners: 3, runningRunners: 3 },
    ];
    const r = await cli(["cluster", "create", "etl", "--runners", "3", "--cpus", "2", "--memory", "4GiB", "--wait"]);
    expect(r.code).toBe(ExitCode.ok);
    expect(r.out).toContain("provisioning: runners 1/3");
    expect(r.out).toContain("ready: runners 3/3");
    expect(r.out).toMatch(/state:\s+ready/);
    expect(r.out).toMatch(/runners:\s+3\/3 running/);
  });

  it("create --wait fails with the cluster's reason after --timeout (exit 1)", async () => {
    script = [{ state: ClusterState.DEGRADED, desiredRunners: 5, runningRunners: 4, stateReason: "4 of 5 runners placed: no host has 2 free CPUs" }];
    const r = await cli(["cluster", "create", "etl", "--runners", "5", "--cpus", "2", "--wait", "--timeout", "1"]);
    expect(r.code).toBe(ExitCode.failed);
    expect(r.err).toContain("is not ready after 1 s (degraded, 4 of 5 runners running): 4 of 5 runners placed: no host has 2 free CPUs");
  });

  it("scale sets spec.runner_count and nothing else", async () => {
    updates.length = 0;
    const r = await cli(["cluster", "scale", "etl-AAAAAAAAAAAAAA", "5"]);
    expect(r.code).toBe(ExitCode.ok);
    expect(updates[0]!.slug).toBe("etl-AAAAAAAAAAAAAA");
    expect(updates[0]!.spec?.runnerCount).toBe(5);
    expect(updates[0]!.spec?.runnerCpuCores).toBeUndefined();
    expect((await cli(["cluster", "scale", "etl-AAAAAAAAAAAAAA", "many"])).code).toBe(ExitCode.usage);
  });

  it("stop and start answer the cluster's new state", async () => {
    const stop = await cli(["cluster", "stop", "etl-AAAAAAAAAAAAAA"]);
    expect(stop.code).toBe(ExitCode.ok);
    expect(stop.out).toMatch(/state:\s+stopping/);
    const start = await cli(["cluster", "start", "etl-AAAAAAAAAAAAAA"]);
    expect(start.out).toMatch(/state:\s+provisioning/);
  });

  it("get shows state, reason and runner counts", async () => {
    script = [{ state: ClusterState.DEGRADED, desiredRunners: 5, runningRunners: 3, stateReason: "InsufficientCapacity" }];
    const r = await cli(["cluster", "get", "etl-AAAAAAAAAAAAAA"]);
    expect(r.out).toMatch(/state:\s+degraded: InsufficientCapacity/);
    expect(r.out).toMatch(/runners:\s+3\/5 running/);
  });

  it("manifests prints a Deployment and ScaledObject sized from the spec", async () => {
    script = [{ spec: { runnerCount: 3, runnerCpuCores: 2, runnerMemoryBytes: 4n * 1024n ** 3n, idleTimeoutSeconds: 600 } as never }];
    const r = await cli(["cluster", "manifests", "etl-AAAAAAAAAAAAAA"]);
    expect(r.code).toBe(ExitCode.ok);
    const docs = parseAllDocuments(r.out).map((d) => d.toJSON() as { kind: string; spec: Record<string, unknown> });
    expect(docs.map((d) => d.kind)).toEqual(["Deployment", "ScaledObject"]);
    expect(docs[0]!.spec.replicas).toBe(3);
    expect(docs[1]!.spec.minReplicaCount).toBe(0);
    expect(parse(r.out.split("---")[0]!)).toBeTruthy();
  });
});

describe("corral host and corral runner logs", () => {
  it("host list shows capacity and use", async () => {
    const r = await cli(["host", "list"]);
    expect(r.code).toBe(ExitCode.ok);
    expect(r.out).toContain("gpu-01");
    expect(r.out).toContain("8 cpu, 32 GiB, 2 gpu A100");
    expect(r.out).toContain("4/8 cpu, 8 GiB/32 GiB, 0/2 gpu");
    expect((await cli(["host", "list", "--state", "asleep"])).code).toBe(ExitCode.usage);
  });

  it("host get shows its runners with restarts and last exit; an unknown host exits 3", async () => {
    const r = await cli(["host", "get", "gpu-01"]);
    expect(r.out).toMatch(/labels:\s+zone=a/);
    expect(r.out).toMatch(/r-1\s+etl-AAAAAAAAAAAAAA\s+restarting\s+-\s+2\s+signal SIGKILL/);
    expect((await cli(["host", "get", "nope"])).code).toBe(ExitCode.notFound);
  });

  it("runner logs prints the tail with escaped control characters and says what was dropped", async () => {
    const r = await cli(["runner", "logs", "r-1", "--tail", "50"]);
    expect(r.code).toBe(ExitCode.ok);
    expect(r.out).toContain("2026-12-04T10:00:00.000Z   runner r-1 up (tail 50)");
    expect(r.out).toContain("E warn \\x1b[31mred\\x1b[0m");
    expect(r.err).toContain("5 earlier lines were dropped");
  });
});
