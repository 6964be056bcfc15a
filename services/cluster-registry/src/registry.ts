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
  RuntimeService,
} from "@corral/proto";
import type { ApiKeyVerifier, ServiceMount } from "@corral/server-kit";
import { createApiKeyService } from "./api-key-service.js";
import { createApiKeys } from "./api-keys.js";
import { createClusterService } from "./cluster-service.js";
import { createClusters } from "./clusters.js";
import { createConfigurationService } from "./configuration-service.js";
import { createConfigurations } from "./configurations.js";
import { createHardwareService } from "./hardware-service.js";
import { createHardwareProfiles } from "./hardware.js";
import { createLocationService } from "./location-service.js";
import { createLocations } from "./locations.js";
import { createNodeService } from "./node-service.js";
import { createNodes } from "./nodes.js";
import { createRuntimeService, type RuntimeOptions } from "./runtime-service.js";
import type { RegistryDatabase } from "./store/database.js";

export interface RegistryOptions {
  db: Kysely<RegistryDatabase>;
  runtime?: RuntimeOptions;
  /** A node with no presence report for this long reads as OFFLINE (default 60 s). */
  nodeTimeoutMs?: number;
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
}

export function createRegistry(options: RegistryOptions): Registry {
  const { db } = options;
  const apiKeys = createApiKeys(db);
  const configurations = createConfigurations(db);
  const clusters = createClusters(db, configurations);
  const nodes = createNodes(db, clusters, options.nodeTimeoutMs === undefined ? {} : { timeoutMs: options.nodeTimeoutMs });
  const services = [ClusterService, LocationService, HardwareService, ConfigurationService, NodeService, RuntimeService, ApiKeyService];

  const mounts: ServiceMount[] = [
    { service: ClusterService, impl: createClusterService(clusters), internal: ["ResolveClusters"] },
    { service: LocationService, impl: createLocationService(createLocations(db)) },
    { service: HardwareService, impl: createHardwareService(createHardwareProfiles(db)) },
    { service: ConfigurationService, impl: createConfigurationService(configurations) },
    { service: NodeService, impl: createNodeService(nodes), internal: ["ReportPresence"] },
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
  };
}
