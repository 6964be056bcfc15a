// The environment every service process reads. Each variable is documented in docs/configuration.md.
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { randomBytes } from "node:crypto";
import { ConfigError, envBool, envDurationMs, envInt, envOptional, envString, envUrl } from "./config.js";
import { refusePlaceholder, refusePlaceholderPassword } from "./secret-placeholders.js";
import { defaultPerAddress } from "./connection-budget.js";
import { defaultConnectionLimits, type ConnectionLimits } from "./connection-guard.js";
import { defaultConsoleDir } from "./console-files.js";

export interface ServiceConfig {
  host: string;
  port: number;
  /** The key services call each other with; all processes of a suite must share it. */
  serviceKey: string;
  serviceKeyGenerated: boolean;
  tls?: { cert: Buffer; key: Buffer };
  databaseUrl: string;
  redisUrl: string;
  redisKeyPrefix: string;
  registryUrl: string;
  jobsUrl: string;
  brokerUrl: string;
  /**
   * How long another service trusts a verified API key (ms), and how often open streams' keys are
   * checked again (`CORRAL_KEY_CACHE`).
   */
  keyCacheMs: number;
  /**
   * Failed API key checks a client address may make per second (`CORRAL_AUTH_FAILURE_RATE`, 20) and
   * at once (`CORRAL_AUTH_FAILURE_BURST`, 50); beyond, RESOURCE_EXHAUSTED without a lookup.
   */
  authFailureRate: number;
  authFailureBurst: number;
  /** Take the client address from X-Forwarded-For (`CORRAL_TRUST_FORWARDED_FOR`, default false). */
  trustForwardedFor: boolean;
  shutdownGraceMs: number;
  /** What clients are told to connect to (RuntimeService.GetRuntimeConfig). */
  publicUrl: string;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection (`CORRAL_MAX_CONCURRENT_STREAMS`). */
  maxConcurrentStreams: number;
  /** Largest request message accepted, in bytes (`CORRAL_MAX_MESSAGE_BYTES`): RESOURCE_EXHAUSTED above. */
  maxMessageBytes: number;
  /**
   * Responses at least this large are compressed when the client accepts gzip or br
   * (`CORRAL_COMPRESS_MIN_BYTES`); 0, the default, never compresses responses.
   */
  compressMinBytes: number;
  /**
   * Whether V8 scavenges (young-generation collections) on helper threads
   * (`CORRAL_GC_PARALLEL_SCAVENGE`). By default only on machines with more than 4 CPUs: on a small
   * machine shared with Postgres, Redis and the other services the helpers wait for a core, and
   * the same work costs a quarter more CPU in all.
   */
  parallelScavenge: boolean;
  /** Connection caps and the deadlines of idle or slow connections (readConnectionLimits). */
  connectionLimits: ConnectionLimits;
  /**
   * The built web console served at / (`CORRAL_CONSOLE_DIR`; default packages/console/dist, which
   * `npm install` builds; `off`: no console).
   */
  consoleDir?: string;
}

type Env = Record<string, string | undefined>;

export function readServiceConfig(defaultPort: number, env: Env = process.env): ServiceConfig {
  const port = envInt("PORT", defaultPort, { min: 0, max: 65535 }, env);
  const host = envString("HOST", "127.0.0.1", env);
  const certFile = envOptional("CORRAL_TLS_CERT", env);
  const keyFile = envOptional("CORRAL_TLS_KEY", env);
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError("CORRAL_TLS_CERT and CORRAL_TLS_KEY: set both (TLS) or neither (h2c)");
  }
  const readPem = (name: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError(`${name}: cannot read ${file}: ${(err as Error).message}`);
    }
  };
  const tls =
    certFile && keyFile ? { cert: readPem("CORRAL_TLS_CERT", certFile), key: readPem("CORRAL_TLS_KEY", keyFile) } : undefined;
  const given = envOptional("CORRAL_SERVICE_KEY", env);
  if (given !== undefined && given.length < 16) {
    throw new ConfigError("CORRAL_SERVICE_KEY: expected at least 16 characters");
  }
  refusePlaceholder("CORRAL_SERVICE_KEY", given);
  refusePlaceholderPassword("DATABASE_URL", envOptional("DATABASE_URL", env));
  refusePlaceholderPassword("REDIS_URL", envOptional("REDIS_URL", env));
  const scheme = tls ? "https" : "http";
  const self = `${scheme}://${host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host}:${port}`;
  return {
    host,
    port,
    serviceKey: given ?? `corral_service_${randomBytes(24).toString("hex")}`,
    serviceKeyGenerated: given === undefined,
    tls,
    databaseUrl: envUrl("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres", ["postgres", "postgresql"], env),
    redisUrl: envUrl("REDIS_URL", "redis://127.0.0.1:6379", ["redis", "rediss"], env),
    redisKeyPrefix: envString("CORRAL_REDIS_PREFIX", "", env),
    registryUrl: envUrl("CORRAL_REGISTRY_URL", "http://127.0.0.1:7701", ["http", "https"], env),
    jobsUrl: envUrl("CORRAL_JOBS_URL", "http://127.0.0.1:7702", ["http", "https"], env),
    brokerUrl: envUrl("CORRAL_BROKER_URL", "http://127.0.0.1:7703", ["http", "https"], env),
    keyCacheMs: envDurationMs("CORRAL_KEY_CACHE", 2_000, env),
    authFailureRate: envInt("CORRAL_AUTH_FAILURE_RATE", 20, { min: 0, max: 1_000_000 }, env),
    authFailureBurst: envInt("CORRAL_AUTH_FAILURE_BURST", 50, { min: 1, max: 1_000_000 }, env),
    trustForwardedFor: envBool("CORRAL_TRUST_FORWARDED_FOR", false, env),
    shutdownGraceMs: envDurationMs("CORRAL_SHUTDOWN_GRACE", 10_000, env),
    publicUrl: envString("CORRAL_PUBLIC_URL", self, env),
    maxConcurrentStreams: envInt("CORRAL_MAX_CONCURRENT_STREAMS", 1_000, { min: 1, max: 2 ** 31 - 1 }, env),
    maxMessageBytes: envInt("CORRAL_MAX_MESSAGE_BYTES", 8 * 1024 * 1024, { min: 1024, max: 2 ** 31 - 1 }, env),
    compressMinBytes: envInt("CORRAL_COMPRESS_MIN_BYTES", 0, { min: 0, max: 2 ** 31 - 1 }, env),
    parallelScavenge: envBool("CORRAL_GC_PARALLEL_SCAVENGE", availableParallelism() > 4, env),
    connectionLimits: readConnectionLimits(env),
    consoleDir: readConsoleDir(env),
  };
}

/**
 * `CORRAL_FIRST_BYTE_TIMEOUT`, `CORRAL_HEADERS_TIMEOUT`, `CORRAL_REQUEST_TIMEOUT`,
 * `CORRAL_MIN_BODY_BYTES_PER_SECOND`, `CORRAL_HTTP2_IDLE_TIMEOUT`, `CORRAL_MAX_CONNECTIONS` and
 * `CORRAL_MAX_CONNECTIONS_PER_ADDRESS` (default: a quarter of the cap, at most 2,000).
 */
export function readConnectionLimits(env: Env = process.env): ConnectionLimits {
  const d = defaultConnectionLimits;
  const positive = (name: string, fallback: number) => {
    const ms = envDurationMs(name, fallback, env);
    if (ms <= 0) throw new ConfigError(`${name}: expected a duration above 0, got ${JSON.stringify(env[name])}`);
    return ms;
  };
  const maxConnections = envInt("CORRAL_MAX_CONNECTIONS", d.maxConnections, { min: 1, max: 10_000_000 }, env);
  const limits: ConnectionLimits = {
    firstByteTimeoutMs: positive("CORRAL_FIRST_BYTE_TIMEOUT", d.firstByteTimeoutMs),
    headersTimeoutMs: positive("CORRAL_HEADERS_TIMEOUT", d.headersTimeoutMs),
    requestTimeoutMs: positive("CORRAL_REQUEST_TIMEOUT", d.requestTimeoutMs),
    minBodyBytesPerSecond: envInt("CORRAL_MIN_BODY_BYTES_PER_SECOND", d.minBodyBytesPerSecond, { min: 0, max: 2 ** 31 - 1 }, env),
    http2IdleTimeoutMs: envDurationMs("CORRAL_HTTP2_IDLE_TIMEOUT", d.http2IdleTimeoutMs, env),
    http2PingIntervalMs: envDurationMs("CORRAL_HTTP2_PING_INTERVAL", d.http2PingIntervalMs, env),
    http2PingTimeoutMs: positive("CORRAL_HTTP2_PING_TIMEOUT", d.http2PingTimeoutMs),
    maxConnections,
    maxConnectionsPerAddress: envInt(
      "CORRAL_MAX_CONNECTIONS_PER_ADDRESS",
      defaultPerAddress(maxConnections),
      { min: 1, max: maxConnections },
      env,
    ),
  };
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new ConfigError(
      `CORRAL_HEADERS_TIMEOUT: expected at most CORRAL_REQUEST_TIMEOUT (${limits.requestTimeoutMs} ms), got ${limits.headersTimeoutMs} ms`,
    );
  }
  return limits;
}

function readConsoleDir(env: Env): string | undefined {
  const dir = envString("CORRAL_CONSOLE_DIR", defaultConsoleDir, env);
  return dir === "off" ? undefined : dir;
}
