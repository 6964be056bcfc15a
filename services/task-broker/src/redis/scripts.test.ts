// Every Lua script's file name tells its true key count, its header documents KEYS, ARGV and the
// result, and its includes resolve.
import { describe, expect, it } from "vitest";
import { keyCount, scriptNames, scriptSource } from "./scripts.js";

describe("Lua scripts", () => {
  it.each(scriptNames)("%s uses exactly the KEYS its file name counts", (name) => {
    const source = scriptSource(name);
    const used = new Set([...source.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1])));
    expect(Math.max(...used)).toBe(keyCount(name));
    expect(used.size).toBe(keyCount(name));
  });

  it.each(scriptNames)("%s documents KEYS, ARGV and its result in its header", (name) => {
    const header = scriptSource(name).split("]]")[0]!;
    expect(header).toMatch(/KEYS\[1\]/);
    expect(header).toMatch(/ARGV\[1\]/);
    expect(header).toMatch(/Result:/);
  });

  it.each(scriptNames)("%s has no include left unresolved", (name) => {
    expect(scriptSource(name)).not.toMatch(/^--! include/m);
  });
});
