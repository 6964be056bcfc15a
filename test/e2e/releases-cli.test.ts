// `corral release ...` in its own process against the registry as its own process: publishing a
// task package from a directory and from a git repository (bundled with esbuild, inspected in a
// child process), then deploy, status and delete.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { PublishReleaseRequestSchema, PublishReleaseResponseSchema, type PublishReleaseResponse } from "@corral/proto";
import { createDatabase } from "@corral/server-kit";
import { createTestDatabase, type TestDatabase } from "@corral/server-kit/testing";
import { createRegistry, REGISTRY_SCHEMA, type RegistryDatabase } from "@corral/cluster-registry";
import { Client } from "@corral/sdk";
import type { Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { randomServiceKey, spawnService, type ServiceProcess } from "../support/processes.js";

/** A task package: two task classes (one in a default-exported array) using a local npm dependency. */
function writeTaskPackage(dir: string, options: { name?: string; version?: string; greeting?: string; throwOnImport?: boolean } = {}) {
  mkdirSync(join(dir, "tiny-dep"), { recursive: true });
  writeFileSync(join(dir, "tiny-dep/package.json"), JSON.stringify({ name: "tiny-dep", version: "1.0.0", main: "index.js" }));
  // CommonJS requiring a built-in: the bundle must keep `require` working in ESM.
  writeFileSync(join(dir, "tiny-dep/index.js"), `const path = require("node:path");\nexports.greet = (who) => ${JSON.stringify(options.greeting ?? "hello")} + " " + path.basename(who);\n`);
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({
      name: `@acme/${options.name ?? "render"}`,
      version: options.version ?? "1.4.0",
      type: "module",
      main: "src/index.js",
      engines: { node: ">=20" },
      dependencies: { "tiny-dep": "file:./tiny-dep" },
    }),
  );
  mkdirSync(join(dir, "src"), { recursive: true });
  writeFileSync(
    join(dir, "src/index.js"),
    `import { greet } from "tiny-dep";
import { Task } from "@corral/sdk";
${options.throwOnImport ? 'throw new Error("config file missing");' : ""}
export class RenderTile extends Task {
  static identifier = { name: "render/Tile", version: "v1.2" };
  async execute(ctx) { ctx.logger.info(greet("/tiles/1")); }
}
class Compose {
  static identifier = { name: "render/Compose", version: "v1.0" };
  async execute() {}
}
export const helper = () => greet("x");
export default [Compose];
`,
  );
  // The dependency as npm installs a file: dependency.
  mkdirSync(join(dir, "node_modules"), { recursive: true });
  execFileSync("ln", ["-sfn", "../tiny-dep", join(dir, "node_modules/tiny-dep")]);
}

function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", ["-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "init.defaultBranch=main", ...args], { cwd, encoding: "utf8" }).trim();
}

describe("corral release", { timeout: 300_000 }, () => {
  let database: TestDatabase;
  let registry: ServiceProcess;
  let db: Kysely<RegistryDatabase>;
  let apiKey: string;
  let client: Client;
  let work: string;
  const env = () => ({ CORRAL_URL: registry.url, CORRAL_API_KEY: apiKey });

  beforeAll(async () => {
    database = await createTestDatabase("e2e_releases");
    registry = await spawnService({
      name: "cluster-registry",
      entry: "services/cluster-registry/src/main.ts",
      env: { DATABASE_URL: database.url, CORRAL_SERVICE_KEY: randomServiceKey(), CORRAL_SHUTDOWN_GRACE: "2s" },
    });
    db = createDatabase<RegistryDatabase>({ url: database.url, schema: REGISTRY_SCHEMA, max: 2 });
    apiKey = (await createRegistry({ db }).bootstrap("team-releases")).key;
    client = new Client({ url: registry.url, apiKey });
    work = mkdtempSync(join(tmpdir(), "corral-release-e2e-"));
  });
  afterAll(async () => {
    await registry?.stop(5_000);
    await db?.destroy();
    await database?.drop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("publishes a task package directory: bundled with its dependency, its identifiers in the manifest", async () => {
    const pkg = join(work, "render");
    writeTaskPackage(pkg);
    const run = await runCli(["release", "publish", pkg, "--version", "1.4.0", "--json"], { env: env() });
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as { release: { name: string; version: string; digest: string; manifest: { identifiers: unknown[]; nodeEngine: string; entry: string; source: unknown } }; created: boolean };
    expect(out.created).toBe(true);
    expect(out.release.name).toBe("render");
    expect(out.release.version).toBe("1.4.0");
    expect(out.release.manifest.identifiers).toEqual([
      { name: "render/Tile", version: "v1.2" },
      { name: "render/Compose", version: "v1.0" },
    ]);
    expect(out.release.manifest.nodeEngine).toBe(">=20");
    expect(out.release.manifest.entry).toBe("src/index.js");
    expect(out.release.manifest.source).toEqual({ directory: { path: pkg } });

    // The bundle stands alone: the dependency is inside; only the SDK, which runners provide, is imported.
    const bundlePath = join(work, "downloaded.mjs");
    const release = await client.releases().download("render", "1.4.0", bundlePath);
    const bytes = readFileSync(bundlePath);
    expect(`sha256:${createHash("sha256").update(bytes).digest("hex")}`).toBe(release.digest);
    const text = bytes.toString("utf8");
    expect(text).toContain('path.basename(who)');
    expect(text).not.toMatch(/from ["']tiny-dep["']/);
    expect(text).toMatch(/from ["']@corral\/sdk["']/);

    // Again with the same content: nothing changes. Other content under the same version: refused.
    const again = await runCli(["release", "publish", pkg, "--version", "1.4.0"], { env: env() });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain("already published");
    writeTaskPackage(pkg, { greeting: "hi" });
    const changed = await runCli(["release", "publish", pkg, "--version", "1.4.0"], { env: env() });
    expect(changed.code).toBe(1);
    expect(changed.stderr).toContain("already_exists");
  });

  it("publishes from a git repository: the branch and the subdirectory asked for", async () => {
    const src = join(work, "git-src");
    mkdirSync(src);
    git(src, "init", "--quiet");
    writeTaskPackage(join(src, "packages/tiles"), { name: "tiles", version: "0.1.0", greeting: "main" });
    writeFileSync(join(src, ".gitignore"), "node_modules\n");
    // A lock file, so the publish installs the dependency itself (npm ci, from the file: path).
    execFileSync("npm", ["install", "--offline", "--ignore-scripts", "--no-audit", "--no-fund"], { cwd: join(src, "packages/tiles") });
    git(src, "add", ".");
    git(src, "commit", "--quiet", "-m", "tiles on main");
    git(src, "checkout", "--quiet", "-b", "feature");
    writeFileSync(join(src, "packages/tiles/tiny-dep/index.js"), 'exports.greet = (who) => "feature " + who;\n');
    git(src, "commit", "--quiet", "-am", "feature greeting");
    const featureCommit = git(src, "rev-parse", "HEAD");
    git(src, "checkout", "--quiet", "main");
    const bare = join(work, "tiles.git");
    git(work, "clone", "--quiet", "--bare", src, bare);

    const url = `file://${bare}`;
    const run = await runCli(["release", "publish", "--git", url, "--ref", "feature", "--dir", "packages/tiles", "--json"], { env: env() });
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as { release: { name: string; version: string; manifest: { source: unknown } } };
    expect(out.release.name).toBe("tiles");
    expect(out.release.version).toBe("0.1.0");
    expect(out.release.manifest.source).toEqual({ git: { url, ref: "feature", commit: featureCommit, dir: "packages/tiles" } });
    const bundlePath = join(work, "tiles.mjs");
    await client.releases().download("tiles", "0.1.0", bundlePath);
    expect(readFileSync(bundlePath, "utf8")).toContain("feature ");

    const missing = await runCli(["release", "publish", "--git", url, "--ref", "feature", "--dir", "packages/nope"], { env: env() });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("packages/nope");
  });

  it("refuses a bundle that throws on import, with its error, and one that exports no tasks", async () => {
    const pkg = join(work, "broken");
    writeTaskPackage(pkg, { name: "broken", throwOnImport: true });
    const run = await runCli(["release", "publish", pkg], { env: env() });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("config file missing");
    expect(await client.releases().list({ name: "broken" })).toEqual([]);

    const empty = join(work, "empty");
    mkdirSync(empty);
    writeFileSync(join(empty, "package.json"), JSON.stringify({ name: "empty", version: "1.0.0", main: "index.js" }));
    writeFileSync(join(empty, "index.js"), "export const notATask = 1;\n");
    const none = await runCli(["release", "publish", empty], { env: env() });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("exports no task classes");
  });

  it("takes a publish from a plain @grpc/grpc-js client stream", async () => {
    const bundle = Buffer.from("export class Plain { static identifier = { name: 'plain', version: 'v1.0' }; execute() {} }\n".repeat(40_000));
    const digest = `sha256:${createHash("sha256").update(bundle).digest("hex")}`;
    const grpcClient = new grpc.Client(registry.url.replace("http://", ""), grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${apiKey}`);
    try {
      const res = await new Promise<PublishReleaseResponse>((resolve, reject) => {
        const call = grpcClient.makeClientStreamRequest(
          "/corral.registry.v1.ReleaseService/PublishRelease",
          (m: unknown) => Buffer.from(toBinary(PublishReleaseRequestSchema, m as never)),
          (b: Buffer) => fromBinary(PublishReleaseResponseSchema, b),
          metadata,
          (err, value) => (err ? reject(err) : resolve(value!)),
        );
        call.write(
          create(PublishReleaseRequestSchema, {
            part: {
              case: "header",
              value: { name: "plain", version: "1.0.0", digest, sizeBytes: BigInt(bundle.length), manifest: { identifiers: [{ name: "plain", version: "v1.0" }] } },
            },
          }),
        );
        for (let at = 0; at < bundle.length; at += 1024 * 1024) {
          call.write(create(PublishReleaseRequestSchema, { part: { case: "chunk", value: bundle.subarray(at, at + 1024 * 1024) } }));
        }
        call.end();
      });
      expect(res.created).toBe(true);
      expect(res.release?.sizeBytes).toBe(BigInt(bundle.length));
      expect((await client.releases().get("plain", "1.0.0")).digest).toBe(digest);
    } finally {
      grpcClient.close();
    }
  });

  it("deploys, shows deployments and status, refuses deleting a deployed release, then undeploys and deletes", async () => {
    const cluster = await client.clusters().create("render farm");
    const deploy = await runCli(["release", "deploy", "render", "1.4.0", "--cluster", cluster.slug], { env: env() });
    expect(deploy.code, deploy.stderr).toBe(0);
    expect(deploy.stdout).toContain(`deployed render@1.4.0 to ${cluster.slug}`);
    expect((await client.clusters().find(cluster.slug)).deployments.map((d) => d.release?.version)).toEqual(["1.4.0"]);

    await client.releases().reportStatus("runner-7", [{ name: "render", version: "1.4.0", state: "failed", error: "SyntaxError: x", restarts: 3 }], {
      cluster: cluster.slug,
    });
    const status = await runCli(["release", "status", "--cluster", cluster.slug], { env: env() });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/runner-7 .*render@1\.4\.0 +failed +3 +SyntaxError: x/);

    const list = await runCli(["release", "list", "--json"], { env: env() });
    expect((JSON.parse(list.stdout) as Array<{ name: string; deployedTo?: string[] }>).find((r) => r.name === "render")?.deployedTo).toEqual([cluster.slug]);

    const refused = await runCli(["release", "delete", "render", "1.4.0"], { env: env() });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("failed_precondition");
    expect((await runCli(["release", "undeploy", "render", "--cluster", cluster.slug], { env: env() })).code).toBe(0);
    expect((await runCli(["release", "delete", "render", "1.4.0"], { env: env() })).code).toBe(0);
    const gone = await runCli(["release", "get", "render", "1.4.0"], { env: env() });
    expect(gone.code).toBe(3);
  });
});
