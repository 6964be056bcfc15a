// Loads the Lua scripts of `lua/` once per connection with ioredis `defineCommand` (EVALSHA with
// a fallback to EVAL). The key count comes from the file name; the batch scripts (one call per
// cluster and batch) declare one key and carry the rest in ARGV. A script names shared Lua from
// `lua/includes/` on an `--! include <name>` line. The typed calls are in script-calls.ts.
import { readFileSync } from "node:fs";
import type { ChainableCommander } from "ioredis";
import type { RedisClient } from "./connection.js";

export const scriptNames = [
  "enqueueTasks-1",
  "claimTasks-1",
  "readClaimTasks-1",
  "readClaimBands-1",
  "extendLeases-1",
  "resumeLeases-1",
  "completeLeases-1",
  "expireLeases-2",
  "requeueEntry-3",
  "dropEntries-1",
  "enqueueGated-1",
  "claimGated-1",
  "requeueGated-1",
  "putCacheEntry-2",
  "getCacheEntry-2",
  "deleteCacheEntry-2",
] as const;

export type ScriptName = (typeof scriptNames)[number];
export type Arg = string | number;

const readLua = (file: string) => readFileSync(new URL(`./lua/${file}.lua`, import.meta.url), "utf8");

/** The script's source with each `--! include <name>` line replaced by lua/includes/<name>.lua. */
export function scriptSource(name: ScriptName): string {
  return readLua(name).replace(/^--! include ([\w-]+)$/gm, (_, include: string) => readLua(`includes/${include}`));
}

const sources = new Map<ScriptName, string>(scriptNames.map((name) => [name, scriptSource(name)]));

function commandName(name: ScriptName): string {
  return name.split("-")[0]!;
}

/** The key count a script's file name declares (`extendLeases-1`: one). */
export function keyCount(name: ScriptName): number {
  return Number(name.split("-")[1]);
}

const defined = new WeakSet<RedisClient>();

/** Defines every script on `redis` (idempotent per connection). */
export function defineScripts(redis: RedisClient): void {
  if (defined.has(redis)) return;
  for (const name of scriptNames) {
    redis.defineCommand(commandName(name), {
      numberOfKeys: keyCount(name),
      lua: sources.get(name)!,
    });
  }
  defined.add(redis);
}

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
export function batchCalls<T>(items: readonly T[], group: (item: T, index: number) => string): number[][] {
  const calls: number[][] = [];
  for (const list of groupIndices(items, group).values()) {
    for (let i = 0; i < list.length; i += scriptBatchSize) calls.push(list.slice(i, i + scriptBatchSize));
  }
  return calls;
}

/** The indices of `items` by group, groups in order of first appearance. */
export function groupIndices<T>(items: readonly T[], group: (item: T, index: number) => string): Map<string, number[]> {
  const groups = new Map<string, number[]>();
  items.forEach((item, i) => {
    const key = group(item, i);
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

export type Target = RedisClient | ChainableCommander;

/** Runs (or, on a pipeline, queues) script `name`; script-calls.ts builds the arguments. */
export function runScript(target: Target, name: ScriptName, keys: readonly string[], args: readonly Arg[]): Promise<unknown> {
  return call(target, name, keys, args);
}
