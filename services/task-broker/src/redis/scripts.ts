// Loads the Lua scripts of `lua/` once per connection with ioredis `defineCommand` (EVALSHA with
// a fallback to EVAL) and gives them typed signatures. The key count comes from the file name;
// the batch scripts (one call per cluster and batch) declare one key and carry the rest in ARGV.
// claim-entry.lua is no script of its own: it is put in front of the two claim scripts.
import { readFileSync } from "node:fs";
import type { ChainableCommander } from "ioredis";
import type { RedisClient } from "./connection.js";

const scriptNames = [
  "enqueueTasks-1",
  "claimTasks-1",
  "readClaimTasks-1",
  "extendLeases-2",
  "resumeLeases-2",
  "completeLeases-1",
  "expireLeases-3",
  "requeueEntry-2",
  "dropEntries-1",
] as const;

type ScriptName = (typeof scriptNames)[number];
type Arg = string | number;

const readLua = (file: string) => readFileSync(new URL(`./lua/${file}.lua`, import.meta.url), "utf8");

/** Lua shared by several scripts, put in front of their source (Redis scripts cannot import). */
const claimEntry = readLua("claim-entry");
const preludes: Partial<Record<ScriptName, string>> = { "claimTasks-1": claimEntry, "readClaimTasks-1": claimEntry };

const sources = new Map<ScriptName, string>(scriptNames.map((name) => [name, (preludes[name] ?? "") + readLua(name)]));

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

/** Items per call of a batch script: Redis runs nothing else while a script runs. */
export const scriptBatchSize = 200;

/**
 * Splits `items` into calls of a batch script: grouped by `group` (the cluster: every key of a
 * call must share its hash tag) and cut at `scriptBatchSize`. Each call lists its items' indices.
 */
export function batchCalls<T>(items: readonly T[], group: (item: T) => string): number[][] {
  const calls: number[][] = [];
  for (const list of groupIndices(items, group).values()) {
    for (let i = 0; i < list.length; i += scriptBatchSize) calls.push(list.slice(i, i + scriptBatchSize));
  }
  return calls;
}

/** The indices of `items` by group, groups in order of first appearance. */
export function groupIndices<T>(items: readonly T[], group: (item: T) => string): Map<string, number[]> {
  const groups = new Map<string, number[]>();
  items.forEach((item, i) => {
    const key = group(item);
    const list = groups.get(key);
    if (list) list.push(i);
    else groups.set(key, [i]);
  });
  return groups;
}

/**
 * Spreads the answers of batch-script calls (`results[c]` answers `calls[c]`, one value per item)
 * back over the items; throws the first call's error.
 */
export function perItem<V>(results: ReadonlyArray<[Error | null, unknown]>, calls: number[][], count: number): V[] {
  const out = new Array<V>(count);
  calls.forEach((call, c) => {
    const [err, values] = results[c]!;
    if (err) throw err;
    call.forEach((i, k) => (out[i] = (values as V[])[k]!));
  });
  return out;
}

/** Typed entry points; on a pipeline they queue and resolve through `exec()`. */
export const scripts = {
  enqueueTasks: (t: Target, keys: string[], args: Arg[]) => call(t, "enqueueTasks-1", keys, args),
  claimTasks: (t: Target, keys: string[], args: Arg[]) => call(t, "claimTasks-1", keys, args),
  readClaimTasks: (t: Target, keys: string[], args: Arg[]) => call(t, "readClaimTasks-1", keys, args),
  extendLeases: (t: Target, keys: [string, string], args: Arg[]) => call(t, "extendLeases-2", keys, args),
  resumeLeases: (t: Target, keys: [string, string], args: Arg[]) => call(t, "resumeLeases-2", keys, args),
  completeLeases: (t: Target, keys: string[], args: Arg[]) => call(t, "completeLeases-1", keys, args),
  expireLeases: (t: Target, keys: [string, string, string], args: Arg[]) => call(t, "expireLeases-3", keys, args),
  requeueEntry: (t: Target, keys: [string, string], args: Arg[]) => call(t, "requeueEntry-2", keys, args),
  dropEntries: (t: Target, keys: string[], args: Arg[]) => call(t, "dropEntries-1", keys, args),
};
