// Loads the Lua scripts of `lua/` once per connection with ioredis `defineCommand` (EVALSHA with
// a fallback to EVAL) and gives them typed signatures. The key count comes from the file name.
import { readFileSync } from "node:fs";
import type { ChainableCommander } from "ioredis";
import type { RedisClient } from "./connection.js";

const scriptNames = [
  "enqueueTask-3",
  "claimTask-3",
  "extendLeases-2",
  "resumeLeases-2",
  "completeLease-2",
  "expireLeases-3",
  "requeueEntry-2",
] as const;

type ScriptName = (typeof scriptNames)[number];
type Arg = string | number;

const sources = new Map<ScriptName, string>(
  scriptNames.map((name) => [name, readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), "utf8")]),
);

function commandName(name: ScriptName): string {
  return name.split("-")[0]!;
}

const defined = new WeakSet<RedisClient>();

/** Defines every script on `redis` (idempotent per connection). */
export function defineScripts(redis: RedisClient): void {
  if (defined.has(redis)) return;
  for (const name of scriptNames) {
    redis.defineCommand(commandName(name), {
      numberOfKeys: Number(name.split("-")[1]),
      lua: sources.get(name)!,
    });
  }
  defined.add(redis);
}

type Target = RedisClient | ChainableCommander;

function call(target: Target, name: ScriptName, keys: readonly string[], args: readonly Arg[]): Promise<unknown> {
  const fn = (target as unknown as Record<string, (...a: Arg[]) => Promise<unknown>>)[commandName(name)];
  if (typeof fn !== "function") throw new Error(`script ${name} is not defined on this connection`);
  return fn.call(target, ...keys, ...args);
}

/** Typed entry points; on a pipeline they queue and resolve through `exec()`. */
export const scripts = {
  enqueueTask: (t: Target, keys: [string, string, string], args: Arg[]) => call(t, "enqueueTask-3", keys, args),
  claimTask: (t: Target, keys: [string, string, string], args: Arg[]) => call(t, "claimTask-3", keys, args),
  extendLeases: (t: Target, keys: [string, string], args: Arg[]) => call(t, "extendLeases-2", keys, args),
  resumeLeases: (t: Target, keys: [string, string], args: Arg[]) => call(t, "resumeLeases-2", keys, args),
  completeLease: (t: Target, keys: [string, string], args: Arg[]) => call(t, "completeLease-2", keys, args),
  expireLeases: (t: Target, keys: [string, string, string], args: Arg[]) => call(t, "expireLeases-3", keys, args),
  requeueEntry: (t: Target, keys: [string, string], args: Arg[]) => call(t, "requeueEntry-2", keys, args),
};
