// A provisioned cluster's state from what placement achieved and what its runners report: the
// pure rule behind Cluster.state, state_reason and the runner counts.
import type { StoredClusterState } from "../store/database.js";

export interface ClusterStatus {
  state: StoredClusterState;
  reason: string;
  desired: number;
  running: number;
}

export function clusterStatus(input: {
  stopped: boolean;
  stopReason: string;
  desired: number;
  /** Runners placed and not told to stop (after this pass). */
  placed: number;
  /** Of those, the ones their agent says are running. */
  running: number;
  /** Every runner still on a host, stopping ones included. */
  remaining: number;
  placementReason: string;
}): ClusterStatus {
  const { desired, running } = input;
  if (input.stopped || desired === 0) {
    const why = input.stopReason === "idle" ? "idle past its timeout; a submitted job wakes it" : input.stopped ? "stopped by hand; StartCluster or a submitted job starts it" : "";
    return input.remaining > 0
      ? { state: "stopping", reason: `${input.remaining} runners draining: ${why}`.replace(/: $/, ""), desired: 0, running }
      : { state: "stopped", reason: why, desired: 0, running: 0 };
  }
  if (input.placementReason !== "") return { state: "degraded", reason: input.placementReason, desired, running };
  if (running >= desired) return { state: "ready", reason: "", desired, running };
  return { state: "provisioning", reason: `${running} of ${desired} runners running`, desired, running };
}
