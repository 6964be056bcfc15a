// The registry's tables as kysely sees them (schema `registry`, first on the search path).
import type { ColumnType, Generated, Insertable, Selectable, Updateable } from "kysely";

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
/** numeric(20,0) for uint64 values; written as decimal strings, read back with `::text`. */
type Uint64 = ColumnType<string, string, string>;
/** jsonb: written as a JSON string, read as the parsed value. */
type Json<T> = ColumnType<T, string, string>;

export interface TeamsTable {
  id: string;
  name: string;
  create_time: Generated<Date>;
}

export interface ApiKeysTable {
  /** UUIDv7, orders keys by creation for paging. */
  id: string;
  /** The short public id inside the key string, `corral_<key_id>_<secret>`. */
  key_id: string;
  team_id: string;
  name: string;
  /** sha256 of the secret; the secret itself is never stored. */
  secret_hash: Buffer;
  create_time: Generated<Date>;
  revoke_time: Timestamp | null;
  /** 'runner': may only work on `cluster_id` (a key minted for a runner an agent launches). */
  scope: Generated<ApiKeyScopeName>;
  cluster_id: string | null;
}

export type ApiKeyScopeName = "team" | "runner";

/** A cluster spec as stored in jsonb; memory is a decimal string so uint64 survives JSON. */
export interface StoredSpec {
  runnerCount?: number;
  runnerCpuCores?: number;
  runnerGpuCount?: number;
  runnerMemoryBytes?: string;
  hardwareId?: string;
  softwareEnvironment?: string;
  idleTimeoutSeconds?: number;
  configuration?: string;
  locationId?: string;
}

export interface ClustersTable {
  id: string;
  team_id: string;
  slug: string;
  name: string;
  description: string;
  spec: Json<StoredSpec>;
  is_default: boolean;
  /** Its spec or a configuration its creator named set runner_count: the registry places its runners. */
  provisioned: Generated<boolean>;
  create_time: Generated<Date>;
  update_time: Generated<Date>;
}

export interface LocationsTable {
  id: string;
  team_id: string;
  name: string;
  provider: string;
  region: string;
  create_time: Generated<Date>;
  update_time: Generated<Date>;
}

export interface HardwareTable {
  id: string;
  team_id: string;
  name: string;
  gpu_count: number;
  gpu_type: string;
  cpu_cores: number;
  memory_bytes: Uint64;
  create_time: Generated<Date>;
}

export interface ConfigurationsTable {
  id: string;
  /** Null for built-in configurations (corral/default), which every team sees. */
  team_id: string | null;
  name: string;
  description: string;
  spec: Json<StoredSpec>;
  create_time: Generated<Date>;
}

export type StoredNodeState = "online" | "draining" | "offline";

export interface StoredHardware {
  cpuCores?: number;
  gpuCount?: number;
  gpuType?: string;
  memoryBytes?: string;
  hostname?: string;
  os?: string;
  arch?: string;
}

export interface NodesTable {
  team_id: string;
  /** The runner id the runner chose; stable across reconnects. */
  runner_id: string;
  session_id: string;
  cluster_id: string;
  cluster_slug: string;
  hostname: string;
  hardware: Json<StoredHardware>;
  identifiers: Json<{ name: string; version: string }[]>;
  labels: Json<Record<string, string>>;
  slots: number;
  busy_slots: number;
  broker_id: string;
  /** What the broker last said; OFFLINE is also derived from `report_time` getting old. */
  state: StoredNodeState;
  connect_time: Timestamp;
  last_seen_time: Timestamp;
  /** The registry's clock when the last report arrived, so broker clock skew cannot hide a node. */
  report_time: Timestamp;
  /** The tasks the node ran at its last report (at most 100, oldest first). */
  running_tasks: ColumnType<StoredRunningTask[], string | undefined, string>;
  /** The broker process that sent the last report ('' from a broker that does not name it). */
  broker_instance: Generated<string>;
}

/** Broker processes alive as of `last_seen_time`; they keep the nodes they last reported alive. */
export interface BrokerInstancesTable {
  instance: string;
  last_seen_time: Timestamp;
}

export interface StoredRunningTask {
  taskId: string;
  attempt: number;
  name: string;
  version: string;
  jobId: string;
  /** ms since the epoch. */
  sinceMs: number;
}

export interface HostsTable {
  id: string;
  team_id: string;
  name: string;
  cpu_cores: number;
  memory_bytes: Uint64;
  gpu_count: number;
  gpu_type: string;
  location_id: string | null;
  labels: Json<Record<string, string>>;
  agent_version: string;
  draining: Generated<boolean>;
  replica_id: string | null;
  connection_id: string | null;
  connect_time: Timestamp;
  last_seen_time: Timestamp;
}

export type PlacementDesire = "run" | "stop";
export type PlacementState = "starting" | "running" | "restarting" | "stopping" | "stopped";

export interface PlacementsTable {
  runner_id: string;
  team_id: string;
  cluster_id: string;
  host_id: string;
  cpu_cores: number;
  memory_bytes: Uint64;
  gpu_count: number;
  gpu_type: string;
  desired: PlacementDesire;
  state: PlacementState;
  sent: Generated<"" | "launch" | "stop">;
  api_key_id: string | null;
  pid: Generated<number>;
  restarts: Generated<number>;
  last_exit: Generated<string>;
  create_time: Generated<Date>;
  start_time: Timestamp | null;
}

export interface RunnerLogsTable {
  runner_id: string;
  seq: Generated<string>;
  time: Timestamp;
  stream: string;
  text: string;
}

export interface RunnerLogStatsTable {
  runner_id: string;
  team_id: string;
  lines: Generated<number>;
  bytes: ColumnType<string, string | number | undefined, string | number>;
  dropped: ColumnType<string, string | number | undefined, string | number>;
  update_time: Generated<Date>;
}

export type StoredClusterState = "pending" | "provisioning" | "ready" | "degraded" | "stopping" | "stopped";

export interface ClusterProvisioningTable {
  cluster_id: string;
  team_id: string;
  stopped: Generated<boolean>;
  stop_reason: Generated<string>;
  state: Generated<StoredClusterState>;
  state_reason: Generated<string>;
  desired_runners: Generated<number>;
  running_runners: Generated<number>;
  last_work_time: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface ProvisioningLeasesTable {
  team_id: string;
  owner: string;
  expire_time: Timestamp;
}

export type StoredBlobState = "uploading" | "stored";

export interface ReleaseBlobsTable {
  id: string;
  team_id: string;
  /** "sha256:" and 64 lowercase hex digits. */
  digest: string;
  /** bigint; pg hands it back as a decimal string. */
  size_bytes: ColumnType<string, number | string, number | string>;
  state: StoredBlobState;
  create_time: Generated<Date>;
}

export interface ReleaseBlobChunksTable {
  blob_id: string;
  seq: number;
  data: Buffer;
}

/** What publishing found in a bundle, as stored in jsonb. */
export interface StoredManifest {
  identifiers: { name: string; version: string }[];
  nodeEngine: string;
  entry: string;
  source?:
    | { directory: { path: string } }
    | { git: { url: string; ref: string; commit: string; dir: string } };
}

export interface ReleasesTable {
  id: string;
  team_id: string;
  name: string;
  version: string;
  /** Sorts versions by semver precedence under the C collation (release-version.ts). */
  version_key: string;
  digest: string;
  size_bytes: ColumnType<string, number | string, number | string>;
  blob_id: string;
  manifest: Json<StoredManifest>;
  create_time: Generated<Date>;
}

export interface DeploymentsTable {
  team_id: string;
  cluster_id: string;
  name: string;
  release_id: string;
  deploy_time: Generated<Date>;
}

export interface RoutesTable {
  id: string;
  team_id: string;
  /** The task identifier the route serves. */
  name: string;
  version: string;
  method: string;
  url: string;
  headers: Json<Record<string, string>>;
  timeout_ms: number;
  max_attempts: number;
  initial_backoff_ms: number;
  max_backoff_ms: number;
  description: string;
  create_time: Generated<Date>;
}

export type StoredLoadState = "loading" | "loaded" | "failed" | "draining";

export interface StoredLoadStatus {
  name: string;
  version: string;
  state: StoredLoadState;
  error: string;
  restarts: number;
}

export interface ReleaseStatusTable {
  team_id: string;
  runner_id: string;
  cluster_id: string;
  releases: Json<StoredLoadStatus[]>;
  report_time: Generated<Date>;
}

/** The channel the deployments trigger NOTIFYs on; the payload is the cluster id. */
export const DEPLOYMENT_CHANGES_CHANNEL = "corral_deployments";

export interface RegistryDatabase {
  teams: TeamsTable;
  api_keys: ApiKeysTable;
  clusters: ClustersTable;
  locations: LocationsTable;
  hardware: HardwareTable;
  configurations: ConfigurationsTable;
  nodes: NodesTable;
  broker_instances: BrokerInstancesTable;
  hosts: HostsTable;
  placements: PlacementsTable;
  runner_logs: RunnerLogsTable;
  runner_log_stats: RunnerLogStatsTable;
  cluster_provisioning: ClusterProvisioningTable;
  provisioning_leases: ProvisioningLeasesTable;
  release_blobs: ReleaseBlobsTable;
  release_blob_chunks: ReleaseBlobChunksTable;
  releases: ReleasesTable;
  deployments: DeploymentsTable;
  release_status: ReleaseStatusTable;
  routes: RoutesTable;
}

export type TeamRow = Selectable<TeamsTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type ClusterRow = Selectable<ClustersTable>;
export type NewCluster = Insertable<ClustersTable>;
export type ClusterUpdate = Updateable<ClustersTable>;
export type LocationRow = Selectable<LocationsTable>;
export type HardwareRow = Selectable<HardwareTable>;
export type ConfigurationRow = Selectable<ConfigurationsTable>;
export type NodeRow = Selectable<NodesTable>;
export type HostRow = Selectable<HostsTable>;
export type RouteRow = Selectable<RoutesTable>;
export type PlacementRow = Selectable<PlacementsTable>;
export type ClusterProvisioningRow = Selectable<ClusterProvisioningTable>;
export type ReleaseRow = Selectable<ReleasesTable>;
export type DeploymentRow = Selectable<DeploymentsTable>;
