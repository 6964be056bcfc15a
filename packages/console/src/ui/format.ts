// Labels and formats shared by the pages: states as users say them, times, sizes.
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { ClusterState, HostState, JobState, NodeState, TaskState } from "@corral/proto";

export const jobStateLabel: Record<JobState, string> = {
  [JobState.UNSPECIFIED]: "unknown",
  [JobState.SUBMITTED]: "queued",
  [JobState.RUNNING]: "running",
  [JobState.STARTED]: "started",
  [JobState.COMPLETED]: "succeeded",
  [JobState.FAILED]: "failed",
  [JobState.CANCELED]: "canceled",
};

export const taskStateLabel: Record<TaskState, string> = {
  [TaskState.UNSPECIFIED]: "unknown",
  [TaskState.QUEUED]: "queued",
  [TaskState.RUNNING]: "running",
  [TaskState.COMPUTED]: "succeeded",
  [TaskState.FAILED]: "failed",
  [TaskState.SKIPPED]: "skipped",
  [TaskState.FAILED_OPTIONAL]: "failed (optional)",
  [TaskState.CANCELED]: "canceled",
};

/** The CSS tone of a state label (state-<tone> classes in styles.css). */
export function tone(label: string): string {
  if (label === "succeeded" || label === "ready" || label === "online") return "ok";
  if (label.startsWith("failed") || label === "degraded" || label === "offline") return "bad";
  if (label === "running" || label === "started" || label === "provisioning" || label === "draining") return "busy";
  return "idle";
}

export const clusterStateLabel: Record<ClusterState, string> = {
  [ClusterState.UNSPECIFIED]: "unknown",
  [ClusterState.PENDING]: "pending",
  [ClusterState.PROVISIONING]: "provisioning",
  [ClusterState.READY]: "ready",
  [ClusterState.DEGRADED]: "degraded",
  [ClusterState.STOPPING]: "stopping",
  [ClusterState.STOPPED]: "stopped",
};

export const nodeStateLabel: Record<NodeState, string> = {
  [NodeState.UNSPECIFIED]: "unknown",
  [NodeState.ONLINE]: "online",
  [NodeState.DRAINING]: "draining",
  [NodeState.OFFLINE]: "offline",
};

export function hostStateLabel(state: HostState): string {
  return (HostState[state] ?? "UNKNOWN").toLowerCase();
}

export function isJobEnded(state: JobState): boolean {
  return state === JobState.COMPLETED || state === JobState.FAILED || state === JobState.CANCELED;
}

export function formatTime(ts: Timestamp | undefined): string {
  if (!ts || (ts.seconds === 0n && ts.nanos === 0)) return "—";
  return timestampDate(ts).toLocaleString();
}

export function formatBytes(n: bigint | number | undefined): string {
  if (n === undefined) return "—";
  let v = Number(n);
  for (const unit of ["B", "KiB", "MiB", "GiB", "TiB"]) {
    if (v < 1024 || unit === "TiB") return `${unit === "B" ? v : v.toFixed(1)} ${unit}`;
    v /= 1024;
  }
  return `${v}`;
}

/** Task input as text when it is UTF-8, else its size. */
export function describeBytes(bytes: Uint8Array, limit = 10_000): string {
  if (bytes.length === 0) return "(empty)";
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, limit));
    return bytes.length > limit ? `${text}\n… (${bytes.length - limit} more bytes)` : text;
  } catch {
    return `(${bytes.length} bytes of binary data)`;
  }
}
