// What every command needs: the connection flags turned into a Client, the output, --json.
import { InvalidArgumentError, type Command } from "commander";
import { Client } from "@corral/sdk";
import { resolveConnection, type Connection } from "./connection.js";
import type { Io } from "./output.js";

export interface CliContext {
  io: Io;
  /** A client for the connection the command's (global) flags name. */
  client(cmd: Command): Client;
  /** The URL and key the command's flags, the environment and the credentials files resolve to. */
  connection(cmd: Command): Connection;
  /** True when --json was given. */
  json(cmd: Command): boolean;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface CliContextOptions {
  io: Io;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Tests pass a client over an in-process router. */
  createClient?: (connection: Connection) => Client;
}

export function createCliContext(options: CliContextOptions): CliContext {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const make = options.createClient ?? ((c: Connection) => new Client({ url: c.url, apiKey: c.apiKey }));
  return {
    io: options.io,
    env,
    cwd,
    client(cmd) {
      return make(this.connection(cmd));
    },
    connection(cmd) {
      const o = cmd.optsWithGlobals<{ url?: string; apiKey?: string }>();
      return resolveConnection({ url: o.url, apiKey: o.apiKey }, env, cwd);
    },
    json(cmd) {
      return Boolean(cmd.optsWithGlobals<{ json?: boolean }>().json);
    },
  };
}

/** Commander option parser for whole numbers in a range. */
export function intArg(min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError("not a whole number");
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`must be between ${min} and ${max}`);
    return n;
  };
}

/** A duration option: milliseconds, or "500ms", "30s", "5m", "2h", "1d". */
export function durationArg(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(value);
  if (!m) throw new InvalidArgumentError('not a duration: use e.g. "500ms", "30s", "5m", "2h"');
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? "ms") as "ms"];
  return Math.round(Number(m[1]) * unit);
}

/** A rate limit: "name:N/period" ("emails:10/1s", "api:100/m"). */
export function rateLimitArg(value: string): { name: string; limit: number; period: string } {
  const m = /^(.+):(\d+)\/(\d*(?:\.\d+)?\s*(?:ms|s|m|h|d))$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError('not a rate limit: use name:N/period, e.g. "emails:10/1s"');
  const limit = Number(m[2]);
  if (limit < 1 || limit > 100_000) throw new InvalidArgumentError("the limit must be between 1 and 100000");
  return { name: m[1]!, limit, period: /^\d/.test(m[3]!) ? m[3]! : `1${m[3]!}` };
}

/** A point in time: ISO 8601 ("2026-12-24T18:00:00Z"). */
export function timeArg(value: string): Date {
  const d = new Date(value);
  if (!Number.isFinite(d.getTime())) throw new InvalidArgumentError('not a time: use ISO 8601, e.g. "2026-12-24T18:00:00Z"');
  return d;
}

/** Commander collector for repeatable options. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Commander collector for repeatable key=value options. */
export function collectPairs(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const i = value.indexOf("=");
  if (i <= 0) throw new InvalidArgumentError(`expected key=value, got ${JSON.stringify(value)}`);
  return { ...previous, [value.slice(0, i)]: value.slice(i + 1) };
}
