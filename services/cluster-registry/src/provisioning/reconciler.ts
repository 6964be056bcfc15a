// The reconciler: on every registry replica, a loop that brings each provisioned cluster to its
// spec. One owner per team at a time across replicas (a lease row per team, held with a row lock
// for the whole pass), so two replicas never launch for the same cluster and never book the same
// host twice (hosts belong to a team, so a team's clusters share them). It only writes rows
// (placements, cluster status) and NOTIFYs the hosts concerned; the replica holding a host's agent
// stream sends the commands.
import { sql, type Kysely, type Transaction } from "kysely";
import type { Logger } from "pino";
import { newId } from "../ids.js";
import type { ClusterProvisioningRow, RegistryDatabase, StoredClusterState } from "../store/database.js";
import { listPlacements, listTeamHosts, removePlacements } from "../store/host-repository.js";
import { nodeReportedWithin } from "../store/node-repository.js";
import { specFromJson } from "../store/spec-json.js";
import { HOSTS_CHANNEL } from "./agent-hub.js";
import { clusterStatus } from "./cluster-state.js";
import { hostLiveness } from "./host-liveness.js";
import { planPlacement, type ClusterView, type HostView, type PlacedRunner, type Resources } from "./placement.js";
import type { ClusterWork, WorkSource } from "./work-source.js";

export const DEFAULT_IDLE_TIMEOUT_SECONDS = 1200;

export interface ReconcilerOptions {
  db: Kysely<RegistryDatabase>;
  replicaId: string;
  intervalMs: number;
  graceMs: number;
  /** How long a team's lease lasts without renewal (default 3 intervals, at least 5 s). */
  leaseMs?: number;
  /** A node no broker reported within this long is not running (the registry's node timeout). */
  nodeTimeoutMs: number;
  /** Without one, clusters never idle out or wake on work (nothing tells the registry of work). */
  workSource?: WorkSource;
  logger?: Logger;
}

export interface PassReport {
  teams: number;
  launches: number;
  stops: number;
}

export interface Reconciler {
  /** Run a pass soon (something changed). */
  poke(): void;
  /** One pass over every team whose lease this replica holds or can take. */
  runOnce(): Promise<PassReport>;
  start(): void;
  close(): Promise<void>;
}

type Tx = Transaction<RegistryDatabase>;

const STOP_REASONS = new Set(["idle", "manual"]);

export function resourcesOf(
  spec: Pick<ReturnType<typeof specFromJson>, "runnerCpuCores" | "runnerMemoryBytes" | "runnerGpuCount">,
  profile: { cpu_cores: number; memory_bytes: string; gpu_count: number; gpu_type: string } | undefined,
): Resources {
  // A named hardware profile is the more specific choice: it wins over the configuration's
  // defaults for what it names. CPU and memory are optional in a profile (0: a GPU-only entry):
  // the spec's own apply then.
  if (profile) {
    const memory = BigInt(profile.memory_bytes);
    return {
      cpuCores: profile.cpu_cores > 0 ? profile.cpu_cores : (spec.runnerCpuCores ?? 1),
      memoryBytes: memory > 0n ? memory : (spec.runnerMemoryBytes ?? 0n),
      gpuCount: profile.gpu_count,
      gpuType: profile.gpu_type,
    };
  }
  return {
    cpuCores: spec.runnerCpuCores ?? 1,
    memoryBytes: spec.runnerMemoryBytes ?? 0n,
    gpuCount: spec.runnerGpuCount ?? 0,
    gpuType: "",
  };
}

/** Of these runner ids, those a broker reports connected (ONLINE, reported within the node timeout). */
async function connectedRunners(tx: Tx, teamId: string, runnerIds: string[], nodeTimeoutMs: number): Promise<Set<string>> {
  if (runnerIds.length === 0) return new Set();
  const rows = await tx
    .selectFrom("nodes")
    .select("runner_id")
    .where("team_id", "=", teamId)
    .where("runner_id", "in", runnerIds)
    .where("state", "=", "online")
    .where(nodeReportedWithin(nodeTimeoutMs))
    .execute();
  return new Set(rows.map((r) => r.runner_id));
}

export function createReconciler(options: ReconcilerOptions): Reconciler {
  const { db } = options;
  const leaseMs = options.leaseMs ?? Math.max(5_000, options.intervalMs * 3);
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<PassReport> | undefined;
  let again = false;
  let closed = false;

  async function claimTeams(): Promise<string[]> {
    const rows = await sql<{ team_id: string }>`
      insert into provisioning_leases (team_id, owner, expire_time)
      select team_id, ${options.replicaId}, now() + ${`${leaseMs} milliseconds`}::interval
        from (select team_id from hosts union select team_id from clusters where provisioned) as teams
      on conflict (team_id) do update set owner = excluded.owner, expire_time = excluded.expire_time
        where provisioning_leases.owner = excluded.owner or provisioning_leases.expire_time < now()
      returning team_id`.execute(db);
    return rows.rows.map((r) => r.team_id);
  }

  async function passTeam(tx: Tx, teamId: string, work: Map<string, ClusterWork> | undefined): Promise<{ launches: number; stops: number; hosts: Set<string> }> {
    const touched = new Set<string>();
    // The row lock holds the lease for the whole pass: a replica taking it over waits for our
    // commit, then finds it renewed.
    const lease = await tx
      .selectFrom("provisioning_leases")
      .select(sql<Date>`now()`.as("now"))
      .where("team_id", "=", teamId)
      .where("owner", "=", options.replicaId)
      .where("expire_time", ">", sql<Date>`now()`)
      .forUpdate()
      .executeTakeFirst();
    if (!lease) return { launches: 0, stops: 0, hosts: touched };
    const now = lease.now.getTime();
    await tx
      .updateTable("provisioning_leases")
      .set({ expire_time: sql<Date>`now() + ${`${leaseMs} milliseconds`}::interval` })
      .where("team_id", "=", teamId)
      .execute();

    const hosts = await listTeamHosts(tx, teamId);
    const clusters = (await tx.selectFrom("clusters").selectAll().where("team_id", "=", teamId).where("provisioned", "=", true).orderBy("id").execute())
      .map((c) => ({ row: c, spec: specFromJson(c.spec) }))
      .filter((c) => c.spec.runnerCount !== undefined);
    if (clusters.length > 0) {
      await tx
        .insertInto("cluster_provisioning")
        .values(clusters.map((c) => ({ cluster_id: c.row.id, team_id: teamId })))
        .onConflict((oc) => oc.column("cluster_id").doNothing())
        .execute();
    }
    const provisioning = new Map<string, ClusterProvisioningRow>(
      (await tx.selectFrom("cluster_provisioning").selectAll().where("team_id", "=", teamId).execute()).map((p) => [p.cluster_id, p]),
    );
    const profileIds = [...new Set(clusters.map((c) => c.spec.hardwareId).filter((id): id is string => id !== undefined && id !== ""))];
    const profiles = new Map(
      profileIds.length === 0
        ? []
        : (await tx.selectFrom("hardware").select(["id", "cpu_cores", sql<string>`memory_bytes::text`.as("memory_bytes"), "gpu_count", "gpu_type"]).where("id", "in", profileIds).execute()).map(
            (h) => [h.id, h] as const,
          ),
    );
    const locationNames = new Map(
      (await tx.selectFrom("locations").select(["id", "name"]).where("team_id", "=", teamId).execute()).map((l) => [l.id, l.name] as const),
    );

    // Runners on hosts past the grace are gone with them: their rows and keys go, and placement
    // puts replacements elsewhere. Should the host come back, its agent is told to stop them.
    const liveness = new Map(hosts.map((h) => [h.id, hostLiveness(h, now, options.graceMs)]));
    let placements = await listPlacements(tx, teamId);
    const lost = placements.filter((p) => liveness.get(p.host_id) === "offline").map((p) => p.runner_id);
    await removePlacements(tx, lost);
    const lostSet = new Set(lost);
    placements = placements.filter((p) => !lostSet.has(p.runner_id));

    const hostViews: HostView[] = hosts
      .filter((h) => liveness.get(h.id) !== "offline")
      .map((h) => ({
        id: h.id,
        name: h.name,
        locationId: h.location_id,
        capacity: { cpuCores: h.cpu_cores, memoryBytes: BigInt(h.memory_bytes), gpuCount: h.gpu_count, gpuType: h.gpu_type },
        accepting: liveness.get(h.id) === "online",
      }));

    const clusterViews: ClusterView[] = [];
    const provisioningChanges = new Map<string, { stopped: boolean; stop_reason: string; last_work_time?: Date }>();
    for (const c of clusters) {
      const p = provisioning.get(c.row.id)!;
      let stopped = p.stopped;
      let stopReason = p.stop_reason;
      const w = work?.get(c.row.id);
      const busy = w !== undefined && w.queued + w.running > 0;
      if (work !== undefined) {
        if (stopped && busy) {
          // A submitted job wakes it; the idle clock restarts so it does not stop again at once.
          stopped = false;
          stopReason = "";
          provisioningChanges.set(c.row.id, { stopped, stop_reason: stopReason, last_work_time: new Date(now) });
        } else if (!stopped && busy) {
          if (now - p.last_work_time.getTime() > options.intervalMs) provisioningChanges.set(c.row.id, { stopped, stop_reason: stopReason, last_work_time: new Date(now) });
        } else if (!stopped && now - p.last_work_time.getTime() > (c.spec.idleTimeoutSeconds ?? DEFAULT_IDLE_TIMEOUT_SECONDS) * 1000) {
          stopped = true;
          stopReason = "idle";
          provisioningChanges.set(c.row.id, { stopped, stop_reason: stopReason });
        }
      }
      p.stopped = stopped;
      p.stop_reason = STOP_REASONS.has(stopReason) ? stopReason : "";
      const locationId = c.spec.locationId !== undefined && c.spec.locationId !== "" ? c.spec.locationId : null;
      clusterViews.push({
        id: c.row.id,
        locationId,
        locationName: locationId === null ? "" : (locationNames.get(locationId) ?? locationId),
        desired: stopped ? 0 : c.spec.runnerCount!,
        need: resourcesOf(c.spec, c.spec.hardwareId ? profiles.get(c.spec.hardwareId) : undefined),
      });
    }

    const placed: PlacedRunner[] = placements.map((p) => ({
      runnerId: p.runner_id,
      clusterId: p.cluster_id,
      hostId: p.host_id,
      need: { cpuCores: p.cpu_cores, memoryBytes: BigInt(p.memory_bytes), gpuCount: p.gpu_count, gpuType: p.gpu_type },
      stopping: p.desired === "stop",
    }));
    const plan = planPlacement(clusterViews, hostViews, placed);

    if (plan.launches.length > 0) {
      await tx
        .insertInto("placements")
        .values(
          plan.launches.map((l) => ({
            runner_id: newId(),
            team_id: teamId,
            cluster_id: l.clusterId,
            host_id: l.hostId,
            cpu_cores: l.need.cpuCores,
            memory_bytes: String(l.need.memoryBytes),
            gpu_count: l.need.gpuCount,
            gpu_type: l.need.gpuType,
            desired: "run" as const,
            state: "starting" as const,
          })),
        )
        .execute();
      for (const l of plan.launches) touched.add(l.hostId);
    }
    if (plan.stops.length > 0) {
      await tx.updateTable("placements").set({ desired: "stop" }).where("runner_id", "in", plan.stops).execute();
      const byId = new Map(placements.map((p) => [p.runner_id, p]));
      for (const id of plan.stops) {
        const h = byId.get(id)?.host_id;
        if (h) touched.add(h);
      }
    }

    // Status: from the plan and what the runners report; written only when it changed. A runner
    // counts as running when its agent says so *and* a broker has it connected (its node ONLINE):
    // a runner that started but cannot reach the broker is not serving its cluster.
    const connected = await connectedRunners(tx, teamId, placements.filter((p) => p.state === "running").map((p) => p.runner_id), options.nodeTimeoutMs);
    const stopSet = new Set(plan.stops);
    for (const c of clusterViews) {
      const p = provisioning.get(c.id)!;
      const mine = placements.filter((r) => r.cluster_id === c.id);
      const active = mine.filter((r) => r.desired === "run" && !stopSet.has(r.runner_id));
      const status = clusterStatus({
        stopped: p.stopped,
        stopReason: p.stop_reason,
        desired: c.desired,
        placed: plan.outcomes.get(c.id)?.placed ?? active.length,
        running: active.filter((r) => r.state === "running" && connected.has(r.runner_id)).length,
        remaining: mine.length + plan.launches.filter((l) => l.clusterId === c.id).length,
        placementReason: plan.outcomes.get(c.id)?.reason ?? "",
      });
      const change = provisioningChanges.get(c.id);
      const same =
        p.state === status.state && p.state_reason === status.reason && p.desired_runners === status.desired && p.running_runners === status.running;
      if (same && !change) continue;
      await tx
        .updateTable("cluster_provisioning")
        .set({
          state: status.state as StoredClusterState,
          state_reason: status.reason,
          desired_runners: status.desired,
          running_runners: status.running,
          ...(change ?? {}),
        })
        .where("cluster_id", "=", c.id)
        .execute();
    }
    for (const hostId of touched) await sql`select pg_notify(${HOSTS_CHANNEL}, ${hostId})`.execute(tx);
    return { launches: plan.launches.length, stops: plan.stops.length, hosts: touched };
  }

  async function runOnce(): Promise<PassReport> {
    const teams = await claimTeams();
    const report: PassReport = { teams: 0, launches: 0, stops: 0 };
    // A suite with no hosts and no provisioned cluster never asks the broker anything.
    if (teams.length === 0) return report;
    let work: Map<string, ClusterWork> | undefined;
    if (options.workSource) {
      try {
        work = await options.workSource();
      } catch (err) {
        // Without an answer nothing idles out or wakes this pass; placement goes on.
        options.logger?.warn({ err }, "could not read queue stats; idle and wake-up skipped this pass");
      }
    }
    for (const teamId of teams) {
      if (closed) break;
      try {
        const r = await db.transaction().execute((tx) => passTeam(tx, teamId, work));
        report.teams++;
        report.launches += r.launches;
        report.stops += r.stops;
      } catch (err) {
        // One team's failure never stalls another's.
        options.logger?.error({ err, teamId }, "reconcile pass failed for a team");
      }
    }
    return report;
  }

  function runSoon(): void {
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    running = runOnce()
      .catch((err: unknown) => {
        options.logger?.error({ err }, "reconcile pass failed");
        return { teams: 0, launches: 0, stops: 0 };
      })
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          runSoon();
        }
      });
  }

  return {
    poke: runSoon,
    runOnce,
    start() {
      if (timer || closed) return;
      timer = setInterval(runSoon, options.intervalMs);
      timer.unref();
      runSoon();
    },
    async close() {
      closed = true;
      clearInterval(timer);
      timer = undefined;
      await running;
    },
  };
}
