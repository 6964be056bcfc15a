// Placement and reconcile benchmark: 1,000 clusters over 100 hosts. Times the pure placement
// function (a first pass placing everything, a steady pass changing nothing) and the reconciler's
// pass over the real Postgres (first pass writing every placement, then steady passes). Prints JSON.
import { performance } from "node:perf_hooks";
import { createDatabase, migrateToLatest } from "@corral/server-kit";
import { createTestDatabase } from "@corral/server-kit/testing";
import { planPlacement, type ClusterView, type HostView, type PlacedRunner } from "../../services/cluster-registry/src/provisioning/placement.js";
import { createReconciler } from "../../services/cluster-registry/src/provisioning/reconciler.js";
import { newId } from "../../services/cluster-registry/src/ids.js";
import type { RegistryDatabase } from "../../services/cluster-registry/src/store/database.js";
import { REGISTRY_SCHEMA, registryMigrations } from "../../services/cluster-registry/src/store/migrations/index.js";

const CLUSTERS = Number(process.env.BENCH_CLUSTERS ?? 1_000);
const HOSTS = Number(process.env.BENCH_HOSTS ?? 100);
const GIB = 1024n ** 3n;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function timeIt(runs: number, f: () => void): number[] {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    f();
    out.push(performance.now() - t);
  }
  return out;
}

// Pure placement: every cluster 1-3 runners of 1-2 CPUs; hosts of 64 CPUs in 4 locations.
const locations = ["l0", "l1", "l2", "l3"];
const hosts: HostView[] = Array.from({ length: HOSTS }, (_, i) => ({
  id: `h${i}`,
  name: `h${i}`,
  locationId: locations[i % 4]!,
  capacity: { cpuCores: 64, memoryBytes: 256n * GIB, gpuCount: 0, gpuType: "" },
  accepting: true,
}));
const clusters: ClusterView[] = Array.from({ length: CLUSTERS }, (_, i) => ({
  id: `c${String(i).padStart(5, "0")}`,
  locationId: i % 5 === 0 ? null : locations[i % 4]!,
  locationName: "",
  desired: 1 + (i % 3),
  need: { cpuCores: 1 + (i % 2), memoryBytes: 2n * GIB, gpuCount: 0, gpuType: "" },
}));
const first = planPlacement(clusters, hosts, []);
const placed: PlacedRunner[] = first.launches.map((l, i) => ({ runnerId: `r${i}`, clusterId: l.clusterId, hostId: l.hostId, need: l.need, stopping: false }));
const pureFirst = timeIt(20, () => planPlacement(clusters, hosts, []));
const pureSteady = timeIt(20, () => planPlacement(clusters, hosts, placed));

// The reconciler over Postgres: one team owning all hosts and clusters.
const database = await createTestDatabase("placement_bench");
const db = createDatabase<RegistryDatabase>({ url: database.url, schema: REGISTRY_SCHEMA, max: 4 });
let result: Record<string, unknown>;
try {
  await migrateToLatest(db, REGISTRY_SCHEMA, registryMigrations);
  const teamId = newId();
  await db.insertInto("teams").values({ id: teamId, name: "bench" }).execute();
  const now = new Date();
  await db
    .insertInto("hosts")
    .values(
      hosts.map((h) => ({
        id: newId(),
        team_id: teamId,
        name: h.name,
        cpu_cores: 64,
        memory_bytes: String(256n * GIB),
        gpu_count: 0,
        gpu_type: "",
        location_id: null,
        labels: "{}",
        agent_version: "bench",
        replica_id: "bench",
        connection_id: "bench",
        connect_time: now,
        last_seen_time: new Date(now.getTime() + 3_600_000),
      })),
    )
    .execute();
  for (let i = 0; i < CLUSTERS; i += 500) {
    await db
      .insertInto("clusters")
      .values(
        clusters.slice(i, i + 500).map((c, j) => ({
          id: newId(),
          team_id: teamId,
          slug: `c-${i + j}`,
          name: `c-${i + j}`,
          description: "",
          spec: JSON.stringify({ runnerCount: c.desired, runnerCpuCores: c.need.cpuCores, runnerMemoryBytes: String(c.need.memoryBytes), runnerGpuCount: 0 }),
          is_default: false,
        })),
      )
      .execute();
  }
  const reconciler = createReconciler({ db, replicaId: "bench", intervalMs: 60_000, graceMs: 3_600_000, nodeTimeoutMs: 60_000 });
  let t = performance.now();
  const firstPass = await reconciler.runOnce();
  const firstPassMs = performance.now() - t;
  const steady: number[] = [];
  for (let i = 0; i < 10; i++) {
    t = performance.now();
    const r = await reconciler.runOnce();
    steady.push(performance.now() - t);
    if (r.launches !== 0 || r.stops !== 0) throw new Error("a steady pass changed placements");
  }
  await reconciler.close();
  result = {
    clusters: CLUSTERS,
    hosts: HOSTS,
    runners: first.launches.length,
    placement_first_pass_ms: { median: median(pureFirst), min: Math.min(...pureFirst) },
    placement_steady_pass_ms: { median: median(pureSteady), min: Math.min(...pureSteady) },
    reconcile_first_pass_ms: firstPassMs,
    reconcile_first_pass_launches: firstPass.launches,
    reconcile_steady_pass_ms: { median: median(steady), min: Math.min(...steady) },
  };
} finally {
  await db.destroy();
  await database.drop();
}
console.log(JSON.stringify(result, null, 2));
