// Wires the registry's domain and handlers over one database: the mounts a server serves, the key
// verifier the registry's own server authenticates with, and the bootstrap path for a first key.
import type { Kysely } from "kysely";
import {
  ApiKeyService,
  ClusterService,
  ConfigurationService,
  HardwareService,
  LocationService,
  NodeService,
  ReleaseService,
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
import { createNodes } from "./nodes.js";
import { createReleaseService } from "./release-service.js";
import { createReleaseStatus } from "./release-status.js";
import { createReleases } from "./releases.js";
import { createRuntimeService, type RuntimeOptions } from "./runtime-service.js";
import type { RegistryDatabase } from "./store/database.js";
import { createPostgresBlobStore } from "./store/postgres-blob-store.js";

export interface RegistryOptions {
  db: Kysely<RegistryDatabase>;
  runtime?: RuntimeOptions;
  /** A node with no presence report for this long reads as OFFLINE (default 60 s). */
  nodeTimeoutMs?: number;
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
  /** Starts the sweep of abandoned release uploads. */
  start(): void;
  /** Ends open deployment watches cleanly (the server is going away). */
  drain(): void;
  /** Stops the sweep and the LISTEN connection; the database stays open (the caller owns it). Idempotent. */
  close(): Promise<void>;
}

export function createRegistry(options: RegistryOptions): Registry {
  const { db } = options;
  const apiKeys = createApiKeys(db);
  const configurations = createConfigurations(db);
  const clusters = createClusters(db, configurations);
  const nodes = createNodes(db, clusters, options.nodeTimeoutMs === undefined ? {} : { timeoutMs: options.nodeTimeoutMs });
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
    ReleaseService,
    RuntimeService,
    ApiKeyService,
  ];

  let sweepTimer: NodeJS.Timeout | undefined;

  const mounts: ServiceMount[] = [
    { service: ClusterService, impl: createClusterService(clusters, deployments), internal: ["ResolveClusters"] },
    { service: LocationService, impl: createLocationService(createLocations(db)) },
    { service: HardwareService, impl: createHardwareService(createHardwareProfiles(db)) },
    { service: ConfigurationService, impl: createConfigurationService(configurations) },
    { service: NodeService, impl: createNodeService(nodes), internal: ["ReportPresence"] },
    { service: ReleaseService, impl: createReleaseService(releases, deployments, createReleaseStatus(db, clusters)) },
    {
      service: RuntimeService,
      impl: createRuntimeService(options.runtime ?? {}, services.map((s) => s.typeName)),
    },
    { service: ApiKeyService, impl: createApiKeyService(apiKeys), internal: ["VerifyApiKey"] },
  ];

  return {
    mounts,
    verifier: { verify: (key) => apiKeys.verify(key) },
    bootstrap: (teamName, keyName) => apiKeys.bootstrap(teamName, keyName),
    installKey: (teamName, key, keyName) => apiKeys.install(teamName, key, keyName),
    start() {
      if (sweepTimer) return;
      const staleMs = options.staleUploadMs ?? 60 * 60_000;
      const sweep = () =>
        void blobs.sweep(staleMs).catch((err: unknown) => options.logger?.warn({ err }, "release upload sweep failed"));
      sweep();
      sweepTimer = setInterval(sweep, Math.min(staleMs, 10 * 60_000));
      sweepTimer.unref();
    },
    drain: () => deployments.drain(),
    close() {
      clearInterval(sweepTimer);
      sweepTimer = undefined;
      deployments.drain();
      return notifier.close();
    },
  };
}
