import { availableParallelism } from "node:os";
import { describe, expect, it } from "vitest";
import { ConfigError } from "./config.js";
import { readConnectionLimits, readServiceConfig } from "./service-config.js";

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

describe("readConnectionLimits", () => {
  it("has defaults that cap a process at 10,000 connections and one address at 2,000", () => {
    expect(readConnectionLimits({})).toEqual({
      firstByteTimeoutMs: 10_000,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 60_000,
      minBodyBytesPerSecond: 240,
      http2IdleTimeoutMs: 300_000,
      http2PingIntervalMs: 60_000,
      http2PingTimeoutMs: 20_000,
      maxConnections: 10_000,
      maxConnectionsPerAddress: 2_000,
    });
  });

  it("reads durations and counts from the environment", () => {
    const limits = readConnectionLimits({
      CORRAL_FIRST_BYTE_TIMEOUT: "2s",
      CORRAL_HEADERS_TIMEOUT: "500ms",
      CORRAL_REQUEST_TIMEOUT: "1m",
      CORRAL_MIN_BODY_BYTES_PER_SECOND: "0",
      CORRAL_HTTP2_IDLE_TIMEOUT: "0",
      CORRAL_HTTP2_PING_INTERVAL: "0",
      CORRAL_HTTP2_PING_TIMEOUT: "5s",
      CORRAL_MAX_CONNECTIONS: "400",
      CORRAL_MAX_CONNECTIONS_PER_ADDRESS: "400",
    });
    expect(limits).toEqual({
      firstByteTimeoutMs: 2_000,
      headersTimeoutMs: 500,
      requestTimeoutMs: 60_000,
      minBodyBytesPerSecond: 0,
      http2IdleTimeoutMs: 0,
      http2PingIntervalMs: 0,
      http2PingTimeoutMs: 5_000,
      maxConnections: 400,
      maxConnectionsPerAddress: 400,
    });
  });

  it("derives the per-address share from a configured cap", () => {
    expect(readConnectionLimits({ CORRAL_MAX_CONNECTIONS: "400" }).maxConnectionsPerAddress).toBe(100);
  });

  it("names the variable of a bad value", () => {
    expect(() => readConnectionLimits({ CORRAL_FIRST_BYTE_TIMEOUT: "0" })).toThrow(/CORRAL_FIRST_BYTE_TIMEOUT/);
    expect(() => readConnectionLimits({ CORRAL_HTTP2_IDLE_TIMEOUT: "soon" })).toThrow(/CORRAL_HTTP2_IDLE_TIMEOUT/);
    expect(() => readConnectionLimits({ CORRAL_MAX_CONNECTIONS: "10", CORRAL_MAX_CONNECTIONS_PER_ADDRESS: "11" })).toThrow(
      /CORRAL_MAX_CONNECTIONS_PER_ADDRESS/,
    );
    expect(() => readConnectionLimits({ CORRAL_HEADERS_TIMEOUT: "2m", CORRAL_REQUEST_TIMEOUT: "1m" })).toThrow(/CORRAL_HEADERS_TIMEOUT/);
  });
});
