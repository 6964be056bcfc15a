import { availableParallelism } from "node:os";
import { describe, expect, it } from "vitest";
import { ConfigError } from "./config.js";
import { readServiceConfig } from "./service-config.js";

describe("readServiceConfig", () => {
  it("scavenges on helper threads only on machines with more than 4 CPUs, unless told", () => {
    expect(readServiceConfig(0, {}).parallelScavenge).toBe(availableParallelism() > 4);
    expect(readServiceConfig(0, { CORRAL_GC_PARALLEL_SCAVENGE: "on" }).parallelScavenge).toBe(true);
    expect(readServiceConfig(0, { CORRAL_GC_PARALLEL_SCAVENGE: "false" }).parallelScavenge).toBe(false);
    expect(() => readServiceConfig(0, { CORRAL_GC_PARALLEL_SCAVENGE: "sometimes" })).toThrow(ConfigError);
  });

  it("refuses a template's placeholder secrets, naming the variable", () => {
    const refused = (env: Record<string, string>) => {
      try {
        readServiceConfig(0, env);
        return undefined;
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
    };
    expect(refused({ CORRAL_SERVICE_KEY: "CHANGE-ME-service-key-of-at-least-16-characters" })).toMatch(/^CORRAL_SERVICE_KEY: /);
    expect(refused({ CORRAL_SERVICE_KEY: "my-placeholder-service-key" })).toMatch(/^CORRAL_SERVICE_KEY: /);
    expect(refused({ CORRAL_SERVICE_KEY: "example_service_key_0123456789" })).toMatch(/^CORRAL_SERVICE_KEY: /);
    // The sample key compose used to ship as its default.
    expect(refused({ CORRAL_SERVICE_KEY: "compose-service-key-0123456789abcdef" })).toMatch(/^CORRAL_SERVICE_KEY: /);
    expect(refused({ DATABASE_URL: "postgres://corral:CHANGE-ME@postgres.corral.svc.cluster.local:5432/corral" })).toMatch(/^DATABASE_URL: /);
    expect(refused({ REDIS_URL: "redis://:changeme@redis:6379" })).toMatch(/^REDIS_URL: /);
    // A real key, and a host that says "example", pass.
    expect(refused({ CORRAL_SERVICE_KEY: "Zq3v9XkT2pLw8RmN4bYc7HdJ", DATABASE_URL: "postgres://corral:Zq3v9XkT2pLw@db.example.com/corral" })).toBeUndefined();
  });
});
