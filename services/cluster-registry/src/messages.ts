// Domain records to the corral.registry.v1 messages clients see.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  ClusterState,
  ApiKeyScope,
  ApiKeySchema,
  ClusterSchema,
  ClusterSpecSchema,
  ConfigurationSchema,
  HardwareProfileSchema,
  HardwareSchema,
  LocationSchema,
  NodeSchema,
  NodeState,
  RunningTaskSchema,
  TaskIdentifierSchema,
  type ApiKey,
  type Cluster,
  type ClusterSpec,
  type Configuration,
  type Deployment,
  type HardwareProfile,
  type Location,
  type Node,
} from "@corral/proto";
import type { ApiKeyRecord } from "./api-keys.js";
import type { SpecFields } from "./spec.js";
import type { ClusterRecord } from "./store/cluster-repository.js";
import type { ConfigurationRecord } from "./store/configuration-repository.js";
import type { ClusterProvisioningRow, StoredClusterState, StoredNodeState } from "./store/database.js";
import type { HardwareRecord } from "./store/hardware-repository.js";
import type { LocationRecord } from "./store/location-repository.js";
import type { NodeRecord } from "./store/node-repository.js";

export function specMessage(spec: SpecFields): ClusterSpec {
  return create(ClusterSpecSchema, { ...spec });
}

const CLUSTER_STATES: Record<StoredClusterState, ClusterState> = {
  pending: ClusterState.PENDING,
  provisioning: ClusterState.PROVISIONING,
  ready: ClusterState.READY,
  degraded: ClusterState.DEGRADED,
  stopping: ClusterState.STOPPING,
  stopped: ClusterState.STOPPED,
};

/**
 * A cluster; `status` is its provisioning row (none: not provisioned, state UNSPECIFIED), and
 * `deployments` fills Cluster.deployments (calls that show them pass them).
 */
export function clusterMessage(c: ClusterRecord, status?: ClusterProvisioningRow, deployments: Deployment[] = []): Cluster {
  return create(ClusterSchema, {
    ...(status
      ? {
          state: CLUSTER_STATES[status.state],
          stateReason: status.state_reason,
          desiredRunners: status.desired_runners,
          runningRunners: status.running_runners,
        }
      : c.provisioned
        ? // Not reconciled yet (a status row comes with the first pass).
          { state: ClusterState.PENDING, desiredRunners: c.spec.runnerCount ?? 0 }
        : {}),
    id: c.id,
    slug: c.slug,
    name: c.name,
    description: c.description,
    spec: specMessage(c.spec),
    isDefault: c.isDefault,
    createTime: timestampFromDate(c.createTime),
    updateTime: timestampFromDate(c.updateTime),
    teamId: c.teamId,
    deployments,
  });
}

export function configurationMessage(c: ConfigurationRecord): Configuration {
  return create(ConfigurationSchema, {
    name: c.name,
    description: c.description,
    spec: specMessage(c.spec),
    builtin: c.builtin,
    createTime: timestampFromDate(c.createTime),
  });
}

export function locationMessage(l: LocationRecord): Location {
  return create(LocationSchema, {
    id: l.id,
    name: l.name,
    provider: l.provider,
    region: l.region,
    createTime: timestampFromDate(l.createTime),
    updateTime: timestampFromDate(l.updateTime),
  });
}

export function hardwareMessage(h: HardwareRecord): HardwareProfile {
  return create(HardwareProfileSchema, {
    id: h.id,
    name: h.name,
    gpuCount: h.gpuCount,
    gpuType: h.gpuType,
    cpuCores: h.cpuCores,
    memoryBytes: h.memoryBytes,
    createTime: timestampFromDate(h.createTime),
  });
}

export function apiKeyMessage(k: ApiKeyRecord): ApiKey {
  return create(ApiKeySchema, {
    id: k.id,
    name: k.name,
    teamId: k.teamId,
    createTime: timestampFromDate(k.createTime),
    ...(k.revokeTime === undefined ? {} : { revokeTime: timestampFromDate(k.revokeTime) }),
    revoked: k.revokeTime !== undefined,
    scope: k.clusterId === undefined ? ApiKeyScope.UNSPECIFIED : ApiKeyScope.RUNNER,
    clusterId: k.clusterId ?? "",
  });
}

const NODE_STATES: Record<StoredNodeState, NodeState> = {
  online: NodeState.ONLINE,
  draining: NodeState.DRAINING,
  offline: NodeState.OFFLINE,
};

export function nodeStateFromMessage(state: NodeState): StoredNodeState | undefined {
  switch (state) {
    case NodeState.ONLINE:
      return "online";
    case NodeState.DRAINING:
      return "draining";
    case NodeState.OFFLINE:
      return "offline";
    default:
      return undefined;
  }
}

export function nodeMessage(n: NodeRecord): Node {
  return create(NodeSchema, {
    id: n.runnerId,
    sessionId: n.sessionId,
    clusterId: n.clusterId,
    clusterSlug: n.clusterSlug,
    hostname: n.hostname,
    hardware: create(HardwareSchema, n.hardware),
    identifiers: n.identifiers.map((i) => create(TaskIdentifierSchema, i)),
    slots: n.slots,
    busySlots: n.busySlots,
    state: NODE_STATES[n.state],
    labels: n.labels,
    brokerId: n.brokerId,
    connectTime: timestampFromDate(n.connectTime),
    lastSeenTime: timestampFromDate(n.lastSeenTime),
    runningTasks: n.runningTasks.map((t) =>
      create(RunningTaskSchema, {
        taskId: t.taskId,
        attempt: t.attempt,
        identifier: create(TaskIdentifierSchema, { name: t.name, version: t.version }),
        jobId: t.jobId,
        since: timestampFromMs(t.sinceMs),
      }),
    ),
    hostId: n.host?.id ?? "",
    hostName: n.host?.name ?? "",
  });
}
