import { Code, ConnectError } from "@connectrpc/connect";
import { RouteService } from "@corral/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeOf, startRegistryHarness, type RegistryHarness } from "./test-harness.js";

/** The message of a call's INVALID_ARGUMENT (it names the field). */
async function invalid(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (err) {
    const ce = ConnectError.from(err);
    if (ce.code === Code.InvalidArgument) return ce.rawMessage;
    throw err;
  }
  throw new Error("the call succeeded");
}

describe("RouteService", () => {
  let h: RegistryHarness;
  beforeAll(async () => {
    h = await startRegistryHarness("routes");
  });
  afterAll(() => h?.close());

  it("creates a route with defaults filled in, gets, lists by pages and deletes it", async () => {
    const routes = h.client(RouteService);
    const { route } = await routes.createRoute({
      identifier: { name: "echo_job", version: "v1.0" },
      url: "http://echo.example.com:8080/echo/run",
      headers: { Authorization: "Bearer t" },
    });
    expect(route).toMatchObject({
      identifier: { name: "echo_job", version: "v1.0" },
      method: "POST",
      url: "http://echo.example.com:8080/echo/run",
      headers: { Authorization: "Bearer t" },
      timeoutMs: 30_000,
      retry: { maxAttempts: 1, initialBackoffMs: 200, maxBackoffMs: 10_000 },
    });
    expect((await routes.getRoute({ id: route!.id })).route).toEqual(route);

    const ids = [route!.id];
    for (let i = 0; i < 3; i++) {
      const r = await routes.createRoute({
        identifier: { name: `job-${i}`, version: "v2.1" },
        method: "PUT",
        url: "https://api.example.com/x",
        timeoutMs: 500,
        retry: { maxAttempts: 3, initialBackoffMs: 50, maxBackoffMs: 400 },
      });
      expect(r.route).toMatchObject({ method: "PUT", timeoutMs: 500, retry: { maxAttempts: 3, initialBackoffMs: 50, maxBackoffMs: 400 } });
      ids.push(r.route!.id);
    }
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await routes.listRoutes({ pageSize: 3, pageToken });
      seen.push(...page.routes.map((r) => r.id));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(seen).toEqual(ids);

    await routes.deleteRoute({ id: ids[3]! });
    expect(await codeOf(routes.getRoute({ id: ids[3]! }))).toBe(Code.NotFound);
    expect(await codeOf(routes.deleteRoute({ id: ids[3]! }))).toBe(Code.NotFound);
  });

  it("keeps one route per identifier in a team", async () => {
    const routes = h.client(RouteService);
    await routes.createRoute({ identifier: { name: "dup", version: "v1.0" }, url: "http://a.example/" });
    expect(await codeOf(routes.createRoute({ identifier: { name: "dup", version: "v1.0" }, url: "http://b.example/" }))).toBe(Code.AlreadyExists);
    // Another team may route the same identifier its own way.
    const b = h.client(RouteService, h.teamB.key);
    await b.createRoute({ identifier: { name: "dup", version: "v1.0" }, url: "http://c.example/" });
  });

  it("hides other teams' routes: NOT_FOUND for get and delete, absent from lists", async () => {
    const a = h.client(RouteService);
    const b = h.client(RouteService, h.teamB.key);
    const { route } = await a.createRoute({ identifier: { name: "private", version: "v1.0" }, url: "http://a.example/" });
    expect(await codeOf(b.getRoute({ id: route!.id }))).toBe(Code.NotFound);
    expect(await codeOf(b.deleteRoute({ id: route!.id }))).toBe(Code.NotFound);
    expect((await b.listRoutes({})).routes.map((r) => r.id)).not.toContain(route!.id);
    expect((await a.getRoute({ id: route!.id })).route?.id).toBe(route!.id);
    expect(await codeOf(a.getRoute({ id: "not-a-uuid" }))).toBe(Code.NotFound);
  });

  it("rejects invalid routes naming the field", async () => {
    const routes = h.client(RouteService);
    const ok = { identifier: { name: "v", version: "v1.0" }, url: "http://ok.example/" };
    const cases: [Parameters<typeof routes.createRoute>[0], RegExp][] = [
      [{ url: ok.url }, /identifier/],
      [{ ...ok, identifier: { name: "v", version: "1.0" } }, /identifier\.version/],
      [{ ...ok, identifier: { name: "a b", version: "v1.0" } }, /identifier\.name/],
      [{ ...ok, url: "" }, /url/],
      [{ ...ok, url: "ftp://files.example/x" }, /url/],
      [{ ...ok, url: "file:///etc/passwd" }, /url/],
      [{ ...ok, url: "http://" }, /url/],
      [{ ...ok, url: "http://user:pw@ok.example/" }, /url.*password/],
      [{ ...ok, url: `http://ok.example/${"x".repeat(2048)}` }, /url/],
      [{ ...ok, method: "CONNECT" }, /method/],
      [{ ...ok, headers: { "bad name": "x" } }, /headers/],
      [{ ...ok, headers: { "X-A": "line\r\nInjected: 1" } }, /headers/],
      [{ ...ok, headers: { "X-A": "nul\u0000" } }, /headers/],
      [{ ...ok, headers: { Host: "internal" } }, /headers\["Host"\]/],
      [{ ...ok, headers: { "X-A": "1", "x-a": "2" } }, /headers\["x-a"\]|headers\["X-A"\]/],
      [{ ...ok, timeoutMs: 600_001 }, /timeout_ms/],
      [{ ...ok, timeoutMs: 5 }, /timeout_ms/],
      [{ ...ok, retry: { maxAttempts: 11 } }, /retry\.max_attempts/],
      [{ ...ok, retry: { initialBackoffMs: 60_001 } }, /retry\.initial_backoff_ms/],
      [{ ...ok, retry: { initialBackoffMs: 1000, maxBackoffMs: 500 } }, /retry\.max_backoff_ms/],
      [{ ...ok, description: "d".repeat(2001) }, /description/],
      [{ ...ok, description: "nul\u0000" }, /description/],
    ];
    for (const [req, field] of cases) expect(await invalid(routes.createRoute(req)).catch((e: Error) => `${e.message}: ${JSON.stringify(req)}`)).toMatch(field);
    expect(await invalid(routes.getRoute({ id: "" }))).toMatch(/id/);
    expect(await invalid(routes.listRoutes({ pageSize: 1001 }))).toMatch(/page_size/);
    expect(await invalid(routes.listRoutes({ pageToken: "!!" }))).toMatch(/page_token/);
  });
});
