// Credentials resolution shared by the SDK and the CLI, and the connection hint on failed calls.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { GetHostnameResponseSchema, RuntimeService } from "@corral/proto";
import { mount, requireTeam } from "@corral/server-kit";
import { startTestServer } from "@corral/server-kit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "./client.js";
import { describeConnection, findCredentials, resolveConnection } from "./credentials.js";
import { AuthenticationError, UnavailableError } from "./errors.js";

const KEY = "corral_proj1_0123456789abcdef0123";
const USER_KEY = "corral_user1_abcdef0123456789abcd";

let root: string;
let home: string;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const p = (probe.address() as { port: number }).port;
      probe.close(() => resolve(p));
    });
  });
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "corral-credentials-"));
  await mkdir(join(root, "project", ".corral"), { recursive: true });
  await mkdir(join(root, "project", "src", "tasks"), { recursive: true });
  await writeFile(join(root, "project", ".corral", "credentials.json"), JSON.stringify({ url: "http://project:7700", apiKey: KEY }));
  home = join(root, "home");
  await mkdir(join(home, ".config", "corral"), { recursive: true });
  await writeFile(join(home, ".config", "corral", "credentials.json"), JSON.stringify({ url: "http://user:7700", apiKey: USER_KEY }));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("credentials resolution", () => {
  it("finds the project's .corral/credentials.json from a subdirectory", () => {
    const c = resolveConnection({}, { HOME: home }, join(root, "project", "src", "tasks"));
    expect(c).toMatchObject({ url: "http://project:7700", apiKey: KEY, keyId: "proj1" });
    expect(c.source).toBe(join(root, "project", ".corral", "credentials.json"));
  });

  it("falls back to the user's config outside any project", () => {
    expect(resolveConnection({}, { HOME: home }, root)).toMatchObject({ url: "http://user:7700", apiKey: USER_KEY });
    const xdg = join(home, ".config");
    expect(findCredentials(root, { XDG_CONFIG_HOME: xdg })?.file).toBe(join(xdg, "corral", "credentials.json"));
  });

  it("takes given values over the environment over the files", () => {
    const env = { HOME: home, CORRAL_URL: "http://env:1", CORRAL_API_KEY: "corral_env1_0123456789abcdef0123" };
    expect(resolveConnection({}, env, join(root, "project"))).toMatchObject({ url: "http://env:1", source: "CORRAL_API_KEY", keyId: "env1" });
    expect(resolveConnection({ url: "http://flag:2", apiKey: KEY }, env, root)).toMatchObject({ url: "http://flag:2", source: "--api-key" });
    expect(resolveConnection({}, {}, root)).toMatchObject({ url: "http://127.0.0.1:7700", apiKey: undefined, source: "nowhere" });
  });

  it("names a key by its id, never by its secret", () => {
    const line = describeConnection(resolveConnection({}, { HOME: home }, join(root, "project")));
    expect(line).toContain("key proj1");
    expect(line).toContain("http://project:7700");
    expect(line).not.toContain("0123456789abcdef0123");
  });
});

describe("the Client's connection", () => {
  it("new Client() uses the user's credentials file when nothing else names a key", () => {
    const saved = { xdg: process.env.XDG_CONFIG_HOME, url: process.env.CORRAL_URL, key: process.env.CORRAL_API_KEY };
    process.env.XDG_CONFIG_HOME = join(home, ".config");
    delete process.env.CORRAL_URL;
    delete process.env.CORRAL_API_KEY;
    try {
      const client = new Client();
      expect(client.url).toBe("http://user:7700");
      expect(client.apiKey).toBe(USER_KEY);
    } finally {
      for (const [name, value] of [["XDG_CONFIG_HOME", saved.xdg], ["CORRAL_URL", saved.url], ["CORRAL_API_KEY", saved.key]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it("an UNAVAILABLE call names the URL and the key's id", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const client = new Client({ url, apiKey: KEY, retry: { maxAttempts: 1 } });
    const err = await client.runtime().hostname().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toContain(url);
    expect((err as Error).message).toContain("key proj1");
    expect((err as Error).message).not.toContain("0123456789abcdef0123");
  });

  it("an UNAUTHENTICATED call names the URL and the key's id", async () => {
    const srv = await startTestServer({
      keys: { [USER_KEY]: { kind: "user", teamId: "team-a", keyId: "user1" } },
      mounts: [mount(RuntimeService, { getHostname: (_req, ctx) => create(GetHostnameResponseSchema, { hostname: requireTeam(ctx) }) })],
    });
    try {
      const client = new Client({ url: srv.url, apiKey: KEY });
      const err = await client.runtime().hostname().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AuthenticationError);
      expect((err as Error).message).toContain("key proj1 from the apiKey option");
      expect((err as Error).message).toContain(srv.url);
    } finally {
      await srv.close();
    }
  });
});
