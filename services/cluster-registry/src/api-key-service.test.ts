import { Code } from "@connectrpc/connect";
import { ApiKeyService, ClusterService } from "@corral/proto";
import { createRegistryKeyVerifier, parseApiKey } from "@corral/server-kit";
import { TEST_SERVICE_KEY } from "@corral/server-kit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeOf, startRegistryHarness, type RegistryHarness } from "./test-harness.js";

describe("ApiKeyService", () => {
  let h: RegistryHarness;
  beforeAll(async () => {
    h = await startRegistryHarness("apikeys");
  });
  afterAll(() => h?.close());

  it("creates keys shaped corral_<id>_<secret>, shown once and stored only as a hash", async () => {
    const { apiKey, key } = await h.client(ApiKeyService).createApiKey({ name: "ci" });
    expect(key).toMatch(/^corral_[A-Za-z0-9]{12}_[A-Za-z0-9]{40}$/);
    const parsed = parseApiKey(key)!;
    expect(apiKey).toMatchObject({ id: parsed.keyId, name: "ci", teamId: h.teamA.teamId, revoked: false });
    expect(apiKey?.revokeTime).toBeUndefined();
    const row = await h.db.selectFrom("api_keys").selectAll().where("key_id", "=", parsed.keyId).executeTakeFirstOrThrow();
    expect(row.secret_hash.toString("utf8")).not.toContain(parsed.secret);
    expect(JSON.stringify(row)).not.toContain(parsed.secret);
    // The new key works.
    const { cluster } = await h.client(ClusterService, key).getCluster({ slug: "" });
    expect(cluster?.teamId).toBe(h.teamA.teamId);
  });

  it("lists the team's keys in creation order with a cursor", async () => {
    const { key } = await h.registry.bootstrap("key-lister", "first");
    const keys = h.client(ApiKeyService, key);
    for (const name of ["second", "third", "fourth"]) await keys.createApiKey({ name });
    const names: string[] = [];
    let pageToken = "";
    do {
      const page = await keys.listApiKeys({ pageSize: 3, pageToken });
      names.push(...page.apiKeys.map((k) => k.name));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(names).toEqual(["first", "second", "third", "fourth"]);
  });

  it("revokes a key: the next call with it is UNAUTHENTICATED", async () => {
    const keys = h.client(ApiKeyService);
    const { apiKey, key } = await keys.createApiKey({ name: "short-lived" });
    const asKey = h.client(ClusterService, key);
    await asKey.getCluster({ slug: "" });
    const { apiKey: revoked } = await keys.revokeApiKey({ id: apiKey!.id });
    expect(revoked?.revoked).toBe(true);
    expect(revoked?.revokeTime).toBeDefined();
    expect(await codeOf(asKey.getCluster({ slug: "" }))).toBe(Code.Unauthenticated);
    // Revoking again keeps the first revoke time.
    const again = await keys.revokeApiKey({ id: apiKey!.id });
    expect(again.apiKey?.revokeTime).toEqual(revoked?.revokeTime);
    const listed = await keys.listApiKeys({});
    expect(listed.apiKeys.find((k) => k.id === apiKey!.id)?.revoked).toBe(true);
  });

  it("keeps teams' keys apart", async () => {
    const { apiKey } = await h.client(ApiKeyService).createApiKey({ name: "a-only" });
    const b = h.client(ApiKeyService, h.teamB.key);
    expect(await codeOf(b.revokeApiKey({ id: apiKey!.id }))).toBe(Code.NotFound);
    expect((await b.listApiKeys({})).apiKeys.map((k) => k.id)).not.toContain(apiKey!.id);
    expect((await b.listApiKeys({})).apiKeys.every((k) => k.teamId === h.teamB.teamId)).toBe(true);
  });

  it("verifies keys for services only", async () => {
    const internal = h.serviceClient(ApiKeyService);
    const verified = await internal.verifyApiKey({ key: h.teamA.key });
    expect(verified.teamId).toBe(h.teamA.teamId);
    expect(verified.keyId).toBe(parseApiKey(h.teamA.key)!.keyId);
    expect(verified.teamName).toBe("team-a-apikeys");

    const { keyId, secret } = parseApiKey(h.teamA.key)!;
    const wrongSecret = `corral_${keyId}_${secret.slice(0, -1)}${secret.endsWith("a") ? "b" : "a"}`;
    expect(await codeOf(internal.verifyApiKey({ key: wrongSecret }))).toBe(Code.NotFound);
    expect(await codeOf(internal.verifyApiKey({ key: "corral_nope_0123456789abcdef0123" }))).toBe(Code.NotFound);
    expect(await codeOf(internal.verifyApiKey({ key: "not a key" }))).toBe(Code.NotFound);
    expect(await codeOf(h.client(ApiKeyService).verifyApiKey({ key: h.teamA.key }))).toBe(Code.PermissionDenied);
    expect(await codeOf(h.client(ApiKeyService, wrongSecret).listApiKeys({}))).toBe(Code.Unauthenticated);
  });

  it("serves server-kit's registry key verifier, which sees revocations", async () => {
    const verifier = createRegistryKeyVerifier({ baseUrl: h.url, serviceKey: TEST_SERVICE_KEY, ttlMs: 0 });
    const { apiKey, key } = await h.client(ApiKeyService).createApiKey({ name: "remote" });
    expect(await verifier.verify(key)).toMatchObject({ kind: "user", teamId: h.teamA.teamId, keyId: apiKey!.id });
    await h.client(ApiKeyService).revokeApiKey({ id: apiKey!.id });
    expect(await verifier.verify(key)).toBeUndefined();
  });

  it("verifies a key in use again in the background, so a revocation still takes effect within the TTL", async () => {
    const verifier = createRegistryKeyVerifier({ baseUrl: h.url, serviceKey: TEST_SERVICE_KEY, ttlMs: 6_000 });
    const { apiKey, key } = await h.client(ApiKeyService).createApiKey({ name: "refreshed" });
    expect(await verifier.verify(key)).toMatchObject({ keyId: apiKey!.id });
    await h.client(ApiKeyService).revokeApiKey({ id: apiKey!.id });
    await new Promise((r) => setTimeout(r, 3_100));
    // Past half the TTL: still the cached answer (not 6 s old yet), and a lookup starts.
    const before = Date.now();
    expect(await verifier.verify(key)).toMatchObject({ keyId: apiKey!.id });
    // The background lookup sees the revocation; the key stops working within the TTL.
    let caller = await verifier.verify(key);
    while (caller !== undefined && Date.now() - before < 10_000) {
      await new Promise((r) => setTimeout(r, 20));
      caller = await verifier.verify(key);
    }
    expect(caller).toBeUndefined();
  });

  it("bootstraps a team once per name and a new key each call", async () => {
    const first = await h.registry.bootstrap("bootstrapped");
    const second = await h.registry.bootstrap("bootstrapped", "another");
    expect(second.teamId).toBe(first.teamId);
    expect(second.key).not.toBe(first.key);
    for (const key of [first.key, second.key]) {
      expect((await h.registry.verifier.verify(key))?.teamId).toBe(first.teamId);
    }
    const concurrent = await Promise.all(Array.from({ length: 5 }, () => h.registry.bootstrap("raced")));
    expect(new Set(concurrent.map((c) => c.teamId)).size).toBe(1);
  });

  it("installs an operator-chosen key once, safely on every start", async () => {
    const key = `corral_opsKey1_${"s".repeat(20)}${"T".repeat(20)}`;
    const first = await h.registry.installKey("ops-team", key);
    expect(first.created).toBe(true);
    const again = await h.registry.installKey("ops-team", key);
    expect(again).toEqual({ teamId: first.teamId, created: false });
    expect((await h.registry.verifier.verify(key))?.teamId).toBe(first.teamId);
    // Same id, other secret or other team: refused, and the installed key is untouched.
    const other = `corral_opsKey1_${"x".repeat(40)}`;
    expect(await codeOf(h.registry.installKey("ops-team", other))).toBe(Code.AlreadyExists);
    expect(await codeOf(h.registry.installKey("another-team", key))).toBe(Code.AlreadyExists);
    expect(await h.db.selectFrom("teams").select("id").where("name", "=", "another-team").execute()).toEqual([]);
    expect(await h.registry.verifier.verify(other)).toBeUndefined();
    expect(await codeOf(h.registry.installKey("ops-team", "corral_short_abcdefghijklmnop"))).toBe(Code.InvalidArgument);
    // A revoked key is not brought back by the next start.
    await h.client(ApiKeyService, key).revokeApiKey({ id: "opsKey1" });
    expect((await h.registry.installKey("ops-team", key)).created).toBe(false);
    expect(await h.registry.verifier.verify(key)).toBeUndefined();
  });

  it("rejects invalid input for every bounded field", async () => {
    const keys = h.client(ApiKeyService);
    expect(await codeOf(keys.createApiKey({ name: "" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(keys.createApiKey({ name: "n".repeat(101) }))).toBe(Code.InvalidArgument);
    expect(await codeOf(keys.revokeApiKey({ id: "" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(keys.revokeApiKey({ id: "i".repeat(65) }))).toBe(Code.InvalidArgument);
    expect(await codeOf(keys.listApiKeys({ pageSize: 1001 }))).toBe(Code.InvalidArgument);
    expect(await codeOf(keys.listApiKeys({ pageToken: "x".repeat(513) }))).toBe(Code.InvalidArgument);
    expect(await codeOf(keys.listApiKeys({ pageToken: "bogus" }))).toBe(Code.InvalidArgument);
    const internal = h.serviceClient(ApiKeyService);
    expect(await codeOf(internal.verifyApiKey({ key: "" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(internal.verifyApiKey({ key: "k".repeat(257) }))).toBe(Code.InvalidArgument);
  });
});
