// The web console in headless Chromium against a real `corral dev` process (the three services on
// one port, as the console is served in production through one origin): sign-in, live job states,
// the task graph, cancel, another team's job, API keys, accessibility (axe-core), CSP, and the
// time a 5,000-task job's graph takes to draw (printed, not asserted).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser, type Page } from "playwright-core";
import { JobState } from "@corral/proto";
import { Client, Echo, createSdkLogger, type Runner } from "@corral/sdk";
import { createDatabase } from "@corral/server-kit";
import { createTestDatabase, dropTestRedisPrefix, testRedisPrefix, TEST_REDIS_URL, type TestDatabase } from "@corral/server-kit/testing";
import { createRegistry, REGISTRY_SCHEMA, type RegistryDatabase } from "@corral/cluster-registry";
import { waitUntil } from "../support/clients.js";
import { freePort, repoRoot, spawnService, type ServiceProcess } from "../support/processes.js";

const chromiumPath = process.env.CORRAL_CHROMIUM ?? "/usr/bin/chromium";
const screenshots = process.env.CORRAL_CONSOLE_SCREENSHOTS === "1";
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

let database: TestDatabase;
let redisPrefix: string;
let dataDir: string;
let dev: ServiceProcess;
let browser: Browser;
let apiKey: string;
let client: Client;
let otherTeamJobId: string;
let idleCluster: string;
let destroyRegistryDb: () => Promise<void>;
const runners: Runner[] = [];
const cspViolations: string[] = [];

async function newPage(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on("console", (m) => {
    if (m.type() === "error" && /Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  return page;
}

async function signIn(page: Page, key = apiKey): Promise<void> {
  await page.goto(`${dev.url}/`);
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/** axe-core's serious and critical violations on the page as it is now. */
async function seriousViolations(page: Page): Promise<string[]> {
  // Evaluated over the DevTools protocol, which the page's CSP does not govern (an injected
  // <script> would be refused, as it should be).
  await page.evaluate(axeSource);
  // A string, not a function: this file is type-checked without the DOM library.
  const result = (await page.evaluate(`window.axe.run(document, { resultTypes: ["violations"] })`)) as {
    violations: Array<{ id: string; impact: string; nodes: Array<{ target: string[] }> }>;
  };
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`);
}

function startRunner(): Runner {
  const runner = client.runner({ tasks: [Echo], concurrency: 16, logger: createSdkLogger("console-test", "error"), idleMs: 300 });
  runners.push(runner);
  void runner.runForever({ handleSignals: false }).catch(() => {});
  return runner;
}

beforeAll(async () => {
  // The console as `npm install` builds it (a no-op when dist/ is fresh).
  const build = spawnSync(process.execPath, [join(repoRoot, "packages/console/scripts/build-if-stale.mjs")], { encoding: "utf8" });
  if (build.status !== 0) throw new Error(`console build failed:\n${build.stderr}`);

  database = await createTestDatabase("console");
  redisPrefix = testRedisPrefix("console");
  dataDir = mkdtempSync(join(tmpdir(), "corral-console-"));
  const port = await freePort();
  dev = await spawnService({
    name: "corral-dev",
    entry: "packages/cli/src/main.ts",
    args: ["dev", "--no-runner", "--port", String(port), "--data-dir", dataDir],
    env: { DATABASE_URL: database.url, REDIS_URL: TEST_REDIS_URL, CORRAL_REDIS_PREFIX: redisPrefix, CORRAL_SHUTDOWN_GRACE: "2s" },
    port,
  });
  // corral dev writes its credentials once the team is bootstrapped, which may come after it serves.
  const credentials = join(dataDir, "credentials.json");
  apiKey = await waitUntil(
    "corral dev's credentials",
    async () => {
      if (!existsSync(credentials)) return undefined;
      try {
        return (JSON.parse(readFileSync(credentials, "utf8")) as { apiKey?: string }).apiKey;
      } catch {
        return undefined; // still being written
      }
    },
    60_000,
  );
  client = new Client({ url: dev.url, apiKey });

  const db = createDatabase<RegistryDatabase>({ url: database.url, schema: REGISTRY_SCHEMA, max: 1 });
  destroyRegistryDb = () => db.destroy();
  const other = await createRegistry({ db }).bootstrap("team-b");
  const otherClient = new Client({ url: dev.url, apiKey: other.key });
  otherTeamJobId = (await otherClient.jobs().submit("team-b secret job", new Echo({ message: "b" }))).id;
  // A cluster no runner serves: its jobs stay queued until canceled.
  idleCluster = (await client.clusters().create("idle", { description: "no runner joins this cluster" })).slug;

  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await Promise.all(runners.map((r) => r.stop().catch(() => {})));
  await dev?.stop(5_000);
  await destroyRegistryDb?.();
  await database?.drop();
  await dropTestRedisPrefix(redisPrefix);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe("web console", () => {
  it("is served at / and on its client routes with a strict CSP and cacheable assets, without touching RPC paths", async () => {
    const index = await fetch(`${dev.url}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(index.headers.get("cache-control")).toBe("no-cache");
    const csp = index.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    const html = await index.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    const asset = html.match(/src="(\/assets\/[^"]+\.js)"/)![1]!;
    const js = await fetch(`${dev.url}${asset}`);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(js.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect((await fetch(`${dev.url}/jobs/some-id`)).headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect((await fetch(`${dev.url}/clusters/some-slug`)).status).toBe(200);
    expect((await fetch(`${dev.url}/assets/missing.js`)).status).toBe(404);
    expect((await fetch(`${dev.url}/`, { method: "POST" })).status).toBe(405);
    expect(await (await fetch(`${dev.url}/healthz`)).text()).toBe("SERVING\n");
    expect((await fetch(`${dev.url}/metrics`)).headers.get("content-type")).toContain("text/plain");
    // A Connect call on the same port still reaches its service.
    const rpc = await fetch(`${dev.url}/corral.registry.v1.ClusterService/ListClusters`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
      body: "{}",
    });
    expect(rpc.status).toBe(200);
    expect(await rpc.json()).toHaveProperty("clusters");
  });

  it("says clearly when an API key is wrong", async () => {
    const page = await newPage();
    await signIn(page, "corral_wrongkeyid_wrongsecretwrongsecret");
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("not accepted");
    expect(await page.evaluate("sessionStorage.length")).toBe(0);
    await page.close();
  });

  it("shows a submitted job turn from queued to succeeded without a reload", async () => {
    const page = await newPage();
    await signIn(page);
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    const job = await client.jobs().submit("console live job", new Echo({ message: "hello console" }));
    const state = page.locator(`tr[data-job-id="${job.id}"] [data-testid="job-state"]`);
    await expect.poll(() => state.textContent(), { timeout: 20_000 }).toBe("queued");
    startRunner();
    await expect.poll(() => state.textContent(), { timeout: 30_000 }).toBe("succeeded");
    expect(await seriousViolations(page)).toEqual([]);
    await page.close();
  });

  it("draws every task of a 50-task job, with details, live over WatchJob", async () => {
    const page = await newPage();
    await signIn(page);
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    const tasks = Array.from({ length: 50 }, (_, i) => new Echo({ message: `tile ${i}`, delayMs: 200 }));
    const job = await client.jobs().submit("fifty tiles", tasks);
    await page.goto(`${dev.url}/jobs/${job.id}`);
    await page.locator('[data-testid="task-graph"][data-ready="true"]').waitFor({ timeout: 30_000 });
    await expect.poll(() => page.locator(".react-flow__node [data-task-id]").count(), { timeout: 20_000 }).toBe(50);
    // The states update in place until every node says succeeded.
    await expect
      .poll(() => page.locator('.react-flow__node [data-state="succeeded"]').count(), { timeout: 60_000 })
      .toBe(50);
    await page.locator(".react-flow__node").first().click();
    await page.getByRole("heading", { name: "Input" }).waitFor();
    await expect.poll(() => page.locator("aside.details pre").last().textContent()).toContain("tile");
    expect(await seriousViolations(page)).toEqual([]);
    if (screenshots) {
      mkdirSync(join(repoRoot, "docs/images"), { recursive: true });
      await page.screenshot({ path: join(repoRoot, "docs/images/console-job.png") });
    }
    await page.close();
  });

  it("cancels a job from its page", async () => {
    const job = await client.jobs().submit("to cancel", new Echo({ message: "never runs" }), { cluster: idleCluster });
    const page = await newPage();
    await signIn(page);
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    await page.goto(`${dev.url}/jobs/${job.id}`);
    await page.getByRole("button", { name: "Cancel job" }).click();
    await expect.poll(async () => (await client.jobs().find(job.id)).state).toBe(JobState.CANCELED);
    await expect.poll(() => page.locator("h1 .state").textContent()).toBe("canceled");
    await page.close();
  });

  it("answers another team's job URL with not found", async () => {
    const page = await newPage();
    await signIn(page);
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    await page.goto(`${dev.url}/jobs/${otherTeamJobId}`);
    await page.getByRole("heading", { name: "Job not found" }).waitFor();
    expect(await page.content()).not.toContain("team-b secret job");
    await page.close();
  });

  it("shows clusters, a cluster's page with its runners, hosts and releases, and manages API keys", async () => {
    const page = await newPage();
    await signIn(page);
    await page.getByRole("link", { name: "Clusters" }).click();
    await page.getByRole("table", { name: "Clusters" }).waitFor();
    expect(await seriousViolations(page)).toEqual([]);

    const defaultCluster = await client.clusters().find();
    await page.goto(`${dev.url}/clusters/${defaultCluster.slug}`);
    await page.getByRole("heading", { name: "Spec" }).waitFor();
    await page.getByRole("table", { name: "Runners" }).waitFor({ timeout: 20_000 });
    expect(await seriousViolations(page)).toEqual([]);
    if (screenshots) await page.screenshot({ path: join(repoRoot, "docs/images/console-cluster.png") });

    // Hosts and releases: a list, or a clear note when this server does not offer the RPC yet.
    for (const [link, heading] of [["Hosts", "Hosts"], ["Releases", "Releases"]] as const) {
      await page.getByRole("link", { name: link }).click();
      await page.getByRole("heading", { name: heading }).waitFor();
      await expect
        .poll(async () => (await page.locator("main").textContent()) ?? "", { timeout: 10_000 })
        .toMatch(/not available on this server|No (host|release)|Name/);
    }

    await page.getByRole("link", { name: "API keys" }).click();
    await page.getByRole("table", { name: "API keys" }).waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    await page.getByLabel("New key name").fill("console made");
    await page.getByRole("button", { name: "Create key" }).click();
    const secret = (await page.getByTestId("new-key").textContent()) ?? "";
    expect(secret).toMatch(/^corral_/);
    await page.getByRole("button", { name: "Revoke console made" }).click();
    await page.getByRole("button", { name: "Confirm revoke console made" }).click();
    await expect.poll(async () => (await client.apiKeys().all()).find((k) => k.name === "console made")?.revoked).toBe(true);
    await page.close();
  });

  it("draws a 5,000-task job's graph and stays responsive (times printed)", async () => {
    const tasks = Array.from({ length: 5_000 }, (_, i) => new Echo({ message: `m${i}` }));
    const job = await client.jobs().submit("five thousand", tasks, { cluster: idleCluster });
    const page = await newPage();
    await signIn(page);
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    const started = Date.now();
    await page.goto(`${dev.url}/jobs/${job.id}`);
    await page.locator('[data-testid="task-graph"][data-ready="true"]').waitFor({ timeout: 60_000 });
    await page.locator(".react-flow__node").first().waitFor();
    const firstRenderMs = Date.now() - started;
    const inPageMs = Number((await page.getByTestId("graph-render-ms").textContent())?.match(/(\d+)/)?.[1]);
    // Responsive: a click on the collapsed group lists its tasks.
    const clicked = Date.now();
    await page.locator(".react-flow__node").first().click();
    await page.getByRole("heading", { name: "5000 tasks" }).waitFor();
    const clickToListMs = Date.now() - clicked;
    console.log(JSON.stringify({ bench: "console-5000-task-graph", tasks: 5_000, firstRenderMs, inPageMs, clickToListMs }));
    await client.jobs().cancel(job.id);
    await page.close();
  });

  it("loaded every page without a Content-Security-Policy violation", () => {
    expect(cspViolations).toEqual([]);
  });
});
