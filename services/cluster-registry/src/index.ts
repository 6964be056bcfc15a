// @corral/cluster-registry: teams, API keys, clusters, locations, hardware profiles,
// configurations, node presence, hosts and provisioning (corral.registry.v1), in Postgres schema `registry`.
export { REGISTRY_SCHEMA, registryMigrations } from "./store/migrations/index.js";
export type { RegistryDatabase } from "./store/database.js";
export { createRegistry, type Registry, type RegistryOptions } from "./registry.js";
export { DEFAULT_LEASE, DEFAULT_LIMITS, type RuntimeLimits, type RuntimeLeaseSettings, type RuntimeOptions } from "./runtime-service.js";
export { DEFAULT_CONFIGURATION } from "./configurations.js";
export { DEFAULT_NODE_TIMEOUT_MS } from "./nodes.js";
export { DEFAULT_PROVISIONING, type ProvisioningOptions } from "./registry.js";
export { createBrokerWorkSource, type ClusterWork, type WorkSource } from "./provisioning/work-source.js";
// For operator tools and cross-service tests that mint keys as the registry does (a runner-scoped
// key as the provisioning agent hub mints one for each runner it launches).
export { createApiKeys, type ApiKeys } from "./api-keys.js";
