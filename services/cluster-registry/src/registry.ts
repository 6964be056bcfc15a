// Wires the registry's domain and handlers over one database: the mounts a server serves, the key
// verifier the registry's own server authenticates with, and the bootstrap path for a first key.
import type { Kysely } from "kysely";
import {
  ApiKeyService,
  ClusterService,
  ConfigurationService,
  HardwareService,
  HostService,
  LocationService,
  NodeService,
  ReleaseService,
  RouteService,
  RuntimeService,
} from "@corral/proto";
import type { ApiKeyVerifier, ServiceMount } from "@corral/server-kit";
import type { Logger } from "pino";
import type { BlobStore } from "./blob-store.js";
import { createApiKeyService } from "./api-key-service.js";
import { createApiKeys } from "./api-keys.js";
import { createClusterService } from "./cluster-service.js";
import { createClusters } from "./clusters.js";
import { createConfigurationService } from "./configuration-service.js";
import { createConfigurations } from "./configurations.js";
import { createDeploymentNotifier } from "./deployment-notifier.js";
import { createDeployments } from "./deployments.js";
import { createHardwareService } from "./hardware-service.js";
import { createHardwareProfiles } from "./hardware.js";
import { createLocationService } from "./location-service.js";
import { createLocations } from "./locations.js";
import { createNodeService } from "./node-service.js";
import { createNodes, DEFAULT_NODE_TIMEOUT_MS } from "./nodes.js";
import { deleteRetiredNodes } from "./store/node-repository.js";
import { createHostService } from "./host-service.js";
import { newId } from "./ids.js";
import { createAgentHub, type RunnerUrls } from "./provisioning/agent-hub.js";
import { createProvisioning } from "./provisioning/provisioning.js";
import { createReconciler, type Reconciler } from "./provisioning/reconciler.js";
import type { WorkSource } from "./provisioning/work-source.js";
import { createReleaseService } from "./release-service.js";
import { createReleaseStatus } from "./release-status.js";
import { createReleases } from "./releases.js";
import { createRouteService } from "./route-service.js";
import { createRoutes } from "./routes.js";
import { createRuntimeService, type RuntimeOptions } from "./runtime-service.js";
import type { RegistryDatabase } from "./store/database.js";
import { createPostgresBlobStore } from "./store/postgres-blob-store.js";

/** How long an offline node is kept before the sweep deletes it. */
export const DEFAULT_NODE_RETENTION_MS = 24 * 60 * 60_000;

export interface RegistryOptions {
  db: Kysely<RegistryDatabase>;
  runtime?: RuntimeOptions;
  /** A node with no presence report for this long reads as OFFLINE (default 60 s). */
  nodeTimeoutMs?: number;
  /** An offline node with no report for this long is deleted (CORRAL_NODE_RETENTION, default 24 h). */
  nodeRetentionMs?: number;
  provisioning?: ProvisioningOptions;
  /**
   * The registry database's connection string, for the LISTEN connection behind WatchDeployments
   * (so a deploy on one replica reaches watchers on all). Unset: only this process's changes wake them.
   */
  databaseUrl?: string;
  /** Largest release bundle in bytes (CORRAL_MAX_RELEASE_BYTES, default 50 MiB). */
  maxReleaseBytes?: number;
  /** Where release bundles live (default: Postgres, in the registry's schema). */
  blobs?: BlobStore;
  /** Uploads that never finished are deleted after this long (default 1 h). */
  staleUploadMs?: number;
  logger?: Logger;
}

/** Hosts and provisioned clusters (docs/provisioning.md); every duration in milliseconds. */
export interface ProvisioningOptions {
  /** Names this replica in leases and host rows (default: a fresh id). */
  replicaId?: string;
  /** For LISTEN/NOTIFY between replicas; without it commands placed elsewhere arrive on the sweep. */
  databaseUrl?: string;
  /** A host whose stream has been gone this long is OFFLINE (CORRAL_HOST_GRACE, default 30 s). */
  hostGraceMs?: number;
  /** AgentWelcome.heartbeat_interval (default 5 s). */
  agentHeartbeatMs?: number;
  /** Reconcile pass and command sweep interval (CORRAL_RECONCILE_INTERVAL, default 5 s). */
  reconcileIntervalMs?: number;
  /** StopRunner's drain grace (CORRAL_RUNNER_STOP_GRACE, default 30 s). */
  stopGraceMs?: number;
  /** Kept tail of each runner's log (default 1,000 lines and 256 KiB). */
  logMaxLines?: number;
  logMaxBytes?: number;
  /** Queued and running work per cluster (the broker's GetQueueStats); none: no idle stop or wake. */
  workSource?: WorkSource;
  /**
   * Where launched runners connect: `work` routes their Work stream (the broker), `registry` their
   * deployments watch and release downloads. Default: the runtime's public endpoint for both.
   */
  runnerUrls?: RunnerUrls;
}

export const DEFAULT_PROVISIONING = {
  hostGraceMs: 30_000,
  agentHeartbeatMs: 5_000,
  reconcileIntervalMs: 5_000,
  stopGraceMs: 30_000,
  logMaxLines: 1_000,
  logMaxBytes: 256 * 1024,
} as const;

export interface Registry {
  mounts: ServiceMount[];
  /** Checks `corral_<id>_<secret>` keys against the store; no cache, so revocation is immediate. */
  verifier: ApiKeyVerifier;
  /** Creates the team (or reuses the one of that name) and a new key for it; the key is shown once. */
  bootstrap(teamName: string, keyName?: string): Promise<{ teamId: string; key: string }>;
  /**
   * The production bootstrap path: makes an operator-chosen key (`corral_<id>_<secret>`, 32+
   * characters of secret) a key of the team, creating both when missing. Idempotent, so it can
   * run on every start; a revoked key stays revoked.
   */
  installKey(teamName: string, key: string, keyName?: string): Promise<{ teamId: string; created: boolean }>;
  reconciler: Reconciler;
  /** Starts listening for placements, the reconcile loop and the sweep of abandoned release uploads. */
  start(): Promise<void>;
  /** Ends open deployment watches cleanly (the server is going away). */
  drain(): void;
  /** Stops the loops and the LISTEN connections; safe twice. Agent streams end with the server; the database stays open (the caller owns it). */
  close(): Promise<void>;
}

export function createRegistry(options: RegistryOptions): Registry {
  const { db } = options;
  const apiKeys = createApiKeys(db);
  const configurations = createConfigurations(db);
  const clusters = createClusters(db, configurations, options.provisioning?.workSource);
  const nodes = createNodes(db, clusters, options.nodeTimeoutMs === undefined ? {} : { timeoutMs: options.nodeTimeoutMs });
  const p = { ...DEFAULT_PROVISIONING, ...options.provisioning };
  const replicaId = options.provisioning?.replicaId ?? newId();
  const reconciler = createReconciler({
    db,
    replicaId,
    intervalMs: p.reconcileIntervalMs,
    graceMs: p.hostGraceMs,
    nodeTimeoutMs: options.nodeTimeoutMs ?? DEFAULT_NODE_TIMEOUT_MS,
    ...(options.provisioning?.workSource ? { workSource: options.provisioning.workSource } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const hub = createAgentHub({
    db,
    apiKeys,
    replicaId,
    ...(options.provisioning?.databaseUrl ? { databaseUrl: options.provisioning.databaseUrl } : {}),
    runnerUrls: options.provisioning?.runnerUrls ?? { work: options.runtime?.publicEndpoint ?? "", registry: options.runtime?.publicEndpoint ?? "" },
    stopGraceMs: p.stopGraceMs,
    sweepIntervalMs: p.reconcileIntervalMs,
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const provisioning = createProvisioning(db, () => reconciler.poke());
  const blobs = options.blobs ?? createPostgresBlobStore(db);
  const releases = createReleases(db, blobs, options.maxReleaseBytes === undefined ? {} : { maxReleaseBytes: options.maxReleaseBytes });
  const notifier = createDeploymentNotifier({
    ...(options.databaseUrl === undefined ? {} : { url: options.databaseUrl }),
    onError: (err) => options.logger?.warn({ err }, "deployment change listener failed; reconnecting"),
  });
  const deployments = createDeployments(db, clusters, releases, notifier);
  const services = [
    ClusterService,
    LocationService,
    HardwareService,
    ConfigurationService,
    NodeService,
    HostService,
    ReleaseService,
    RouteService,
    RuntimeService,
    ApiKeyService,
  ];

  let sweepTimer: NodeJS.Timeout | undefined;

  let started = false;
  let closing: Promise<void> | undefined;
  const mounts: ServiceMount[] = [
    { service: ClusterService, impl: createClusterService(clusters, provisioning, deployments), internal: ["ResolveClusters"] },
    {
      service: HostService,
      impl: createHostService(db, hub, {
        graceMs: p.hostGraceMs,
        heartbeatIntervalMs: p.agentHeartbeatMs,
        logLimits: { maxLines: p.logMaxLines, maxBytes: p.logMaxBytes },
        poke: () => reconciler.poke(),
        ...(options.logger ? { logger: options.logger } : {}),
      }),
    },
    { service: LocationService, impl: createLocationService(createLocations(db)) },
    { service: HardwareService, impl: createHardwareService(createHardwareProfiles(db)) },
    { service: ConfigurationService, impl: createConfigurationService(configurations) },
    { service: NodeService, impl: createNodeService(nodes), internal: ["ReportPresence"] },
    { service: ReleaseService, impl: createReleaseService(releases, deployments, createReleaseStatus(db, clusters), clusters) },
    { service: RouteService, impl: createRouteService(createRoutes(db)) },
    {
      service: RuntimeService,
      impl: createRuntimeService(
        {
          ...options.runtime,
          provisioning: {
            hostGraceMs: p.hostGraceMs,
            agentHeartbeatMs: p.agentHeartbeatMs,
            reconcileIntervalMs: p.reconcileIntervalMs,
            stopGraceMs: p.stopGraceMs,
          },
        },
        services.map((s) => s.typeName),
      ),
    },
    { service: ApiKeyService, impl: createApiKeyService(apiKeys), internal: ["VerifyApiKey"] },
  ];

  return {
    mounts,
    verifier: { verify: (key) => apiKeys.verify(key) },
    bootstrap: (teamName, keyName) => apiKeys.bootstrap(teamName, keyName),
    installKey: (teamName, key, keyName) => apiKeys.install(teamName, key, keyName),
    reconciler,
    async start() {
      if (started) return;
      started = true;
      const staleMs = options.staleUploadMs ?? 60 * 60_000;
      const nodeRetentionMs = options.nodeRetentionMs ?? DEFAULT_NODE_RETENTION_MS;
      const sweep = () => {
        void blobs.sweep(staleMs).catch((err: unknown) => options.logger?.warn({ err }, "release upload sweep failed"));
        // Offline nodes would otherwise pile up for ever: every runner restart is a new node id.
        void deleteRetiredNodes(db, nodeRetentionMs).catch((err: unknown) => options.logger?.warn({ err }, "offline node sweep failed"));
      };
      sweep();
      sweepTimer = setInterval(sweep, Math.min(staleMs, 10 * 60_000));
      sweepTimer.unref();
      await hub.start();
      reconciler.start();
    },
    drain: () => deployments.drain(),
    close: () =>
      (closing ??= (async () => {
        clearInterval(sweepTimer);
        sweepTimer = undefined;
        deployments.drain();
        await Promise.all([reconciler.close(), hub.close(), notifier.close()]);
      })()),
  };
}
