// The registry as a process component: its database, migrations and mounts.
import {
  ConfigError,
  createDatabase,
  envDurationMs,
  envInt,
  envOptional,
  migrateToLatest,
  parseApiKey,
  pingDatabase,
  refusePlaceholder,
  type ServiceComponent,
  type ServiceConfig,
} from "@corral/server-kit";
import { REGISTRY_SCHEMA, registryMigrations, createRegistry, type Registry, type RegistryDatabase } from "./index.js";
import { MIN_INSTALLED_SECRET_LENGTH } from "./api-keys.js";
import { createBrokerWorkSource } from "./provisioning/work-source.js";
import type { RunnerUrls } from "./provisioning/agent-hub.js";
import { DEFAULT_NODE_RETENTION_MS, DEFAULT_PROVISIONING } from "./registry.js";
import { DEFAULT_MAX_RELEASE_BYTES } from "./releases.js";

/** Why CORRAL_BOOTSTRAP_KEY cannot be installed, or undefined when it can. */
export function bootstrapKeyProblem(key: string): string | undefined {
  const parsed = parseApiKey(key);
  if (!parsed || parsed.secret.length < MIN_INSTALLED_SECRET_LENGTH) {
    return `CORRAL_BOOTSTRAP_KEY: expected a key of the form corral_<key id>_<secret> with a secret of ${MIN_INSTALLED_SECRET_LENGTH} to 128 letters and digits`;
  }
  try {
    refusePlaceholder("CORRAL_BOOTSTRAP_KEY", key);
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

/**
 * Where launched runners connect. CORRAL_PUBLIC_URL, when given, is the one URL that routes the whole
 * suite (an ingress); without it the services sit on their own ports, so a runner's Work stream
 * goes to CORRAL_BROKER_URL and its release calls to this registry.
 */
export function runnerUrls(config: ServiceConfig, env: Record<string, string | undefined> = process.env): RunnerUrls {
  const suiteUrl = envOptional("CORRAL_PUBLIC_URL", env);
  return suiteUrl !== undefined ? { work: suiteUrl, registry: suiteUrl } : { work: config.brokerUrl, registry: config.publicUrl };
}

export interface RegistryComponent extends ServiceComponent {
  registry: Registry;
}

export async function createRegistryComponent(config: ServiceConfig): Promise<RegistryComponent> {
  const db = createDatabase<RegistryDatabase>({ url: config.databaseUrl, schema: REGISTRY_SCHEMA, applicationName: "cluster-registry" });
  try {
    await migrateToLatest(db, REGISTRY_SCHEMA, registryMigrations);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  const registry = createRegistry({
    db,
    runtime: {
      publicEndpoint: config.publicUrl,
      // What the services actually use, not built-in defaults: the broker reads the same variable.
      lease: { leaseDurationMs: envDurationMs("CORRAL_LEASE_DURATION", 30_000) },
      limits: { maxMessageBytes: config.maxMessageBytes },
    },
    provisioning: {
      databaseUrl: config.databaseUrl,
      hostGraceMs: envDurationMs("CORRAL_HOST_GRACE", DEFAULT_PROVISIONING.hostGraceMs),
      reconcileIntervalMs: envDurationMs("CORRAL_RECONCILE_INTERVAL", DEFAULT_PROVISIONING.reconcileIntervalMs),
      stopGraceMs: envDurationMs("CORRAL_RUNNER_STOP_GRACE", DEFAULT_PROVISIONING.stopGraceMs),
      workSource: createBrokerWorkSource({ brokerUrl: config.brokerUrl, serviceKey: config.serviceKey }),
      runnerUrls: runnerUrls(config),
    },
    databaseUrl: config.databaseUrl,
    nodeRetentionMs: envDurationMs("CORRAL_NODE_RETENTION", DEFAULT_NODE_RETENTION_MS),
    maxReleaseBytes: envInt("CORRAL_MAX_RELEASE_BYTES", DEFAULT_MAX_RELEASE_BYTES, { min: 1, max: Number.MAX_SAFE_INTEGER }),
  });
  // Production bootstrap: a key from a secret, ensured on every start (nothing is printed).
  const bootstrapKey = envOptional("CORRAL_BOOTSTRAP_KEY");
  if (bootstrapKey !== undefined) {
    const problem = bootstrapKeyProblem(bootstrapKey);
    if (problem !== undefined) {
      await db.destroy();
      throw new ConfigError(problem);
    }
    await registry.installKey(envOptional("CORRAL_BOOTSTRAP_TEAM") ?? "default", bootstrapKey, "bootstrap");
  }
  let closed: Promise<void> | undefined;
  return {
    name: "cluster-registry",
    registry,
    mounts: registry.mounts,
    verifier: registry.verifier,
    check: () => pingDatabase(db),
    start: () => void registry.start(),
    drain: async () => registry.drain(),
    close: () =>
      (closed ??= (async () => {
        await registry.close().catch(() => {});
        await db.destroy();
      })()),
  };
}
