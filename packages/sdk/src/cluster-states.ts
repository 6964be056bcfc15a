// Cluster and host states by name, for output and for callers who would rather not import enums.
import { ClusterState, HostedRunnerState, HostState } from "@corral/proto";

export type ClusterStateName = "unspecified" | "pending" | "provisioning" | "ready" | "degraded" | "stopping" | "stopped";

const clusterNames: Record<ClusterState, ClusterStateName> = {
  [ClusterState.UNSPECIFIED]: "unspecified",
  [ClusterState.PENDING]: "pending",
  [ClusterState.PROVISIONING]: "provisioning",
  [ClusterState.READY]: "ready",
  [ClusterState.DEGRADED]: "degraded",
  [ClusterState.STOPPING]: "stopping",
  [ClusterState.STOPPED]: "stopped",
};

/** "ready", "degraded", …; "unspecified" for a cluster whose runners are started by hand. */
export function clusterStateName(state: ClusterState): ClusterStateName {
  return clusterNames[state] ?? "unspecified";
}

export type HostStateName = "online" | "draining" | "offline";

export const hostStates: Record<HostStateName, HostState> = {
  online: HostState.ONLINE,
  draining: HostState.DRAINING,
  offline: HostState.OFFLINE,
};

export function hostStateName(state: HostState): HostStateName | "unspecified" {
  return (Object.entries(hostStates).find(([, v]) => v === state)?.[0] as HostStateName | undefined) ?? "unspecified";
}

export function hostedRunnerStateName(state: HostedRunnerState): string {
  switch (state) {
    case HostedRunnerState.STARTING:
      return "starting";
    case HostedRunnerState.RUNNING:
      return "running";
    case HostedRunnerState.RESTARTING:
      return "restarting";
    case HostedRunnerState.STOPPING:
      return "stopping";
    case HostedRunnerState.STOPPED:
      return "stopped";
    default:
      return "unspecified";
  }
}
