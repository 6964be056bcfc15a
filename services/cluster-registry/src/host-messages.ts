// Host rows and their placements to the corral.registry.v1 Host messages clients see.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { CapacitySchema, HostedRunnerSchema, HostedRunnerState, HostSchema, HostState, type Host } from "@corral/proto";
import type { HostLiveness } from "./provisioning/host-liveness.js";
import type { HostRow, PlacementRow, PlacementState } from "./store/database.js";

const LIVENESS: Record<HostLiveness, HostState> = {
  online: HostState.ONLINE,
  draining: HostState.DRAINING,
  // Within the grace its runners stay placed; it takes no new ones.
  unreachable: HostState.ONLINE,
  offline: HostState.OFFLINE,
};

const RUNNER_STATES: Record<PlacementState, HostedRunnerState> = {
  starting: HostedRunnerState.STARTING,
  running: HostedRunnerState.RUNNING,
  restarting: HostedRunnerState.RESTARTING,
  stopping: HostedRunnerState.STOPPING,
  stopped: HostedRunnerState.STOPPED,
};

/** `slugs`: cluster slug by cluster id, for the runners' cluster_slug. */
export function hostMessage(h: HostRow, placements: PlacementRow[], liveness: HostLiveness, slugs: ReadonlyMap<string, string> = new Map()): Host {
  const mine = placements.filter((p) => p.host_id === h.id);
  const used = { cpuCores: 0, memoryBytes: 0n, gpuCount: 0 };
  for (const p of mine) {
    used.cpuCores += p.cpu_cores;
    used.memoryBytes += BigInt(p.memory_bytes);
    used.gpuCount += p.gpu_count;
  }
  return create(HostSchema, {
    id: h.id,
    name: h.name,
    state: LIVENESS[liveness],
    capacity: create(CapacitySchema, { cpuCores: h.cpu_cores, memoryBytes: BigInt(h.memory_bytes), gpuCount: h.gpu_count, gpuType: h.gpu_type }),
    used: create(CapacitySchema, { ...used, gpuType: h.gpu_type }),
    locationId: h.location_id ?? "",
    labels: h.labels,
    agentVersion: h.agent_version,
    connectTime: timestampFromDate(h.connect_time),
    lastSeenTime: timestampFromDate(h.last_seen_time),
    runners: mine.map((p) =>
      create(HostedRunnerSchema, {
        runnerId: p.runner_id,
        hostId: p.host_id,
        clusterId: p.cluster_id,
        clusterSlug: slugs.get(p.cluster_id) ?? "",
        state: p.desired === "stop" && p.state !== "stopped" ? HostedRunnerState.STOPPING : RUNNER_STATES[p.state],
        capacity: create(CapacitySchema, { cpuCores: p.cpu_cores, memoryBytes: BigInt(p.memory_bytes), gpuCount: p.gpu_count, gpuType: p.gpu_type }),
        pid: p.pid,
        restarts: p.restarts,
        lastExit: p.last_exit,
        ...(p.start_time ? { startTime: timestampFromDate(p.start_time) } : {}),
      }),
    ),
  });
}
