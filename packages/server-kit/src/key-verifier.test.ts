import { describe, expect, it } from "vitest";
import type { Caller } from "./auth.js";
import { createRegistryKeyVerifier } from "./key-verifier.js";

const good: Caller = { kind: "user", teamId: "team-1", keyId: "good" };

function fakeRegistry() {
  const asked: string[] = [];
  const valid = new Set(["good"]);
  return { asked, valid, lookup: async (key: string) => (asked.push(key), valid.has(key) ? good : undefined) };
}

describe("registry key verifier", () => {
  it("keeps a good key cached through a flood of bad keys (LRU, bad keys apart)", async () => {
    const registry = fakeRegistry();
    const t = 0;
    const verifier = createRegistryKeyVerifier({ baseUrl: "", serviceKey: "", lookup: registry.lookup, maxKeys: 10, maxBadKeys: 10, now: () => t });
    expect(await verifier.verify("good")).toEqual(good);
    for (let i = 0; i < 1_000; i++) expect(await verifier.verify(`bad-${i}`)).toBeUndefined();
    registry.asked.length = 0;
    expect(await verifier.verify("good")).toEqual(good);
    expect(registry.asked).toEqual([]);
  });

  it("answers a bad key from its cache for a few seconds, then asks again", async () => {
    const registry = fakeRegistry();
    let t = 0;
    const verifier = createRegistryKeyVerifier({ baseUrl: "", serviceKey: "", lookup: registry.lookup, negativeTtlMs: 5_000, now: () => t });
    await verifier.verify("bad");
    await verifier.verify("bad");
    expect(registry.asked).toEqual(["bad"]);
    t += 5_000;
    await verifier.verify("bad");
    expect(registry.asked).toEqual(["bad", "bad"]);
  });

  it("recheck asks past the cache, one lookup for concurrent callers", async () => {
    const registry = fakeRegistry();
    const verifier = createRegistryKeyVerifier({ baseUrl: "", serviceKey: "", lookup: registry.lookup, now: () => 0 });
    await verifier.verify("good");
    registry.valid.delete("good");
    expect(await verifier.verify("good")).toEqual(good); // cached
    const answers = await Promise.all([verifier.recheck!("good"), verifier.recheck!("good")]);
    expect(answers).toEqual([undefined, undefined]);
    expect(registry.asked).toEqual(["good", "good"]);
    expect(await verifier.verify("good")).toBeUndefined();
  });
});
