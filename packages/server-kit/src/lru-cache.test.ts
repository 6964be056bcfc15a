import { describe, expect, it } from "vitest";
import { LruCache } from "./lru-cache.js";

describe("LruCache", () => {
  it("forgets the least recently used entry when full, not everything", () => {
    const cache = new LruCache<string, number>(3);
    cache.set("good", 1);
    cache.set("a", 2);
    cache.set("b", 3);
    cache.get("good");
    cache.set("c", 4);
    expect(cache.size).toBe(3);
    expect(cache.peek("a")).toBeUndefined();
    expect(cache.peek("good")).toBe(1);
  });

  it("keeps a key in steady use through a flood of new keys", () => {
    const cache = new LruCache<string, number>(100);
    cache.set("good", 1);
    for (let i = 0; i < 10_000; i++) {
      cache.set(`random-${i}`, i);
      if (i % 50 === 0) expect(cache.get("good")).toBe(1);
    }
    expect(cache.size).toBe(100);
    expect(cache.get("good")).toBe(1);
  });

  it("peek does not protect an entry from eviction", () => {
    const cache = new LruCache<string, number>(2);
    cache.set("a", 1);
    cache.set("b", 2);
    cache.peek("a");
    cache.set("c", 3);
    expect(cache.peek("a")).toBeUndefined();
    expect(cache.peek("b")).toBe(2);
  });
});
