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
