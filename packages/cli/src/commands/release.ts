// corral release publish|list|get|delete|deploy|undeploy|deployments|status
import { mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { toJson } from "@bufbuild/protobuf";
import type { Command } from "commander";
import { DeploymentSchema, ReleaseSchema, RunnerReleaseStatusSchema, type Deployment, type Release } from "@corral/proto";
import { formatIdentifier, releaseLoadStateName, type ReleaseSourceInput } from "@corral/sdk";
import type { CliContext } from "../context.js";
import { UsageError } from "../exit-codes.js";
import { details, jsonText, messageJson, orDash, table, time } from "../output.js";
import { bundlePackage } from "../release/bundle.js";
import { checkoutGit } from "../release/git-source.js";
import { inspectBundle } from "../release/inspect-bundle.js";
import { packageEntry, readPackageJson } from "../release/package-entry.js";

/**
 * `corral --version` is the program's own flag, which commander takes wherever it appears; for
 * `release publish` it names the release's version, so it is renamed before parsing.
 */
export function renameReleaseVersionFlag(argv: string[]): string[] {
  const at = argv.indexOf("release");
  if (at < 0 || argv[at + 1] !== "publish") return argv;
  return argv.map((arg, i) => {
    if (i <= at + 1) return arg;
    if (arg === "--version") return "--release-version";
    if (arg.startsWith("--version=")) return `--release-version=${arg.slice("--version=".length)}`;
    return arg;
  });
}

function size(bytes: bigint | number): string {
  const n = Number(bytes);
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function identifiersOf(r: Release): string {
  return (r.manifest?.identifiers ?? []).map((i) => formatIdentifier(i)).join(", ");
}

function sourceOf(r: Release): string {
  const s = r.manifest?.source?.source;
  if (s?.case === "directory") return s.value.path;
  if (s?.case === "git") return `${s.value.url} ${s.value.ref} (${s.value.commit.slice(0, 12)})${s.value.dir ? ` ${s.value.dir}` : ""}`;
  return "-";
}

function releaseDetails(r: Release): string {
  return details([
    ["name", r.name],
    ["version", r.version],
    ["digest", r.digest],
    ["size", size(r.sizeBytes)],
    ["tasks", identifiersOf(r)],
    ["node", orDash(r.manifest?.nodeEngine)],
    ["entry", orDash(r.manifest?.entry)],
    ["source", sourceOf(r)],
    ["deployed to", r.deployedTo.join(", ") || "-"],
    ["created", time(r.createTime)],
  ]);
}

function deploymentRows(list: Deployment[]): string[][] {
  return list.map((d) => [d.clusterSlug, d.release?.name ?? "", d.release?.version ?? "", identifiersOf(d.release!), time(d.deployTime)]);
}

interface PublishFlags {
  name?: string;
  releaseVersion?: string;
  entry?: string;
  git?: string;
  ref?: string;
  dir?: string;
}

export function registerReleaseCommands(program: Command, ctx: CliContext): void {
  const release = program.command("release").description("workflow releases: bundles of task code deployed to clusters");

  release
    .command("publish [dir]")
    .description("bundle a task package (a directory, or --git) and publish it as a release")
    .option("--name <name>", "release name (default: package.json name without its scope)")
    .option("--release-version <semver>", "release version, also spelled --version (default: package.json version)")
    .option("--entry <file>", "entry module (default: package.json exports or main)")
    .option("--git <url>", "publish from this git repository instead of a directory")
    .option("--ref <ref>", "with --git: branch, tag or commit (default: the default branch)")
    .option("--dir <subdir>", "with --git: the package's directory inside the repository")
    .addHelpText(
      "after",
      `
The package is bundled with esbuild into one ES module (its npm dependencies inside, Node's built-ins
left out), loaded in a child process to find the task classes it exports, and uploaded with a
manifest: those identifiers, the bundle's sha256 digest and size, package.json engines.node and
where it came from. A name and version never change: publishing the same bundle again changes
nothing, another bundle under them is refused.`,
    )
    .action(async (dirArg: string | undefined, o: PublishFlags, cmd: Command) => {
      if (o.git === undefined && (o.ref !== undefined || o.dir !== undefined)) throw new UsageError("--ref and --dir go with --git");
      if (o.git !== undefined && dirArg !== undefined) throw new UsageError("give a directory or --git, not both");
      const work = await mkdtemp(join(tmpdir(), "corral-release-"));
      try {
        let dir: string;
        let source: ReleaseSourceInput;
        if (o.git !== undefined) {
          const checkout = await checkoutGit(o.git, o.ref, o.dir, join(work, "repo"));
          dir = checkout.dir;
          source = { git: { url: o.git, ref: checkout.ref, commit: checkout.commit, dir: o.dir ?? "" } };
        } else {
          dir = resolve(ctx.cwd, dirArg ?? ".");
          if (!(await stat(dir).catch(() => undefined))?.isDirectory()) throw new UsageError(`${dirArg ?? "."}: not a directory`);
          source = { directory: dir };
        }
        const pkg = readPackageJson(dir);
        const name = o.name ?? pkg?.name?.replace(/^@[^/]+\//, "");
        const version = o.releaseVersion ?? pkg?.version;
        if (!name) throw new UsageError("--name is required (package.json has no name)");
        if (!version) throw new UsageError("--version is required (package.json has no version)");
        const entry = packageEntry(dir, pkg, o.entry);
        const inspectDir = join(work, "bundle");
        await mkdir(inspectDir);
        const bundlePath = join(inspectDir, "bundle.mjs");
        await bundlePackage(dir, entry, bundlePath);
        const identifiers = await inspectBundle(bundlePath, inspectDir);
        const { release: published, created } = await ctx
          .client(cmd)
          .releases()
          .publish({ path: bundlePath }, {
            name,
            version,
            manifest: { identifiers, nodeEngine: pkg?.engines?.node ?? "", entry, source },
          });
        if (ctx.json(cmd)) return ctx.io.out(jsonText({ release: toJson(ReleaseSchema, published), created }));
        ctx.io.out(releaseDetails(published));
        ctx.io.out(created ? `published ${published.name}@${published.version}` : `${published.name}@${published.version} was already published with this content: nothing changed`);
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    });

  release
    .command("list")
    .alias("ls")
    .description("list releases, newest version first within a name")
    .option("--name <name>", "only this release's versions")
    .action(async (o: { name?: string }, cmd: Command) => {
      const list = await ctx.client(cmd).releases().list({ name: o.name });
      if (ctx.json(cmd)) return ctx.io.out(messageJson(ReleaseSchema, list));
      ctx.io.out(
        table(
          ["NAME", "VERSION", "TASKS", "SIZE", "DEPLOYED TO", "CREATED"],
          list.map((r) => [r.name, r.version, identifiersOf(r), size(r.sizeBytes), r.deployedTo.join(", ") || "-", time(r.createTime)]),
        ),
      );
    });

  release
    .command("get <name> [version]")
    .description("show a release (default: its newest version)")
    .action(async (name: string, version: string | undefined, _o: unknown, cmd: Command) => {
      const r = await ctx.client(cmd).releases().get(name, version);
      if (ctx.json(cmd)) return ctx.io.out(messageJson(ReleaseSchema, r));
      ctx.io.out(releaseDetails(r));
    });

  release
    .command("delete <name> <version>")
    .description("delete a release version (refused while it is deployed)")
    .action(async (name: string, version: string, _o: unknown, cmd: Command) => {
      await ctx.client(cmd).releases().delete(name, version);
      if (ctx.json(cmd)) return ctx.io.out(jsonText({ deleted: { name, version } }));
      ctx.io.out(`deleted ${name}@${version}`);
    });

  release
    .command("deploy <name> <version>")
    .description("deploy a release version to a cluster, replacing another version of it there")
    .option("-c, --cluster <slug>", "the cluster (default: the team's default cluster)")
    .action(async (name: string, version: string, o: { cluster?: string }, cmd: Command) => {
      const { deployment, replacedVersion } = await ctx.client(cmd).releases().deploy(name, version, { cluster: o.cluster });
      if (ctx.json(cmd)) return ctx.io.out(jsonText({ deployment: toJson(DeploymentSchema, deployment), replacedVersion }));
      ctx.io.out(
        `deployed ${name}@${version} to ${deployment.clusterSlug}${replacedVersion ? ` (replacing ${replacedVersion})` : ""}`,
      );
    });

  release
    .command("undeploy <name>")
    .description("take a release off a cluster")
    .option("-c, --cluster <slug>", "the cluster (default: the team's default cluster)")
    .action(async (name: string, o: { cluster?: string }, cmd: Command) => {
      await ctx.client(cmd).releases().undeploy(name, { cluster: o.cluster });
      if (ctx.json(cmd)) return ctx.io.out(jsonText({ undeployed: { name, cluster: o.cluster ?? "" } }));
      ctx.io.out(`undeployed ${name}${o.cluster ? ` from ${o.cluster}` : ""}`);
    });

  release
    .command("deployments")
    .description("list what is deployed, on one cluster or all")
    .option("-c, --cluster <slug>", "only this cluster")
    .action(async (o: { cluster?: string }, cmd: Command) => {
      const list = await ctx.client(cmd).releases().deployments({ cluster: o.cluster });
      if (ctx.json(cmd)) return ctx.io.out(messageJson(DeploymentSchema, list));
      ctx.io.out(table(["CLUSTER", "NAME", "VERSION", "TASKS", "DEPLOYED"], deploymentRows(list)));
    });

  release
    .command("status")
    .description("how each release runner of a cluster loaded its releases")
    .option("-c, --cluster <slug>", "the cluster (default: the team's default cluster)")
    .action(async (o: { cluster?: string }, cmd: Command) => {
      const runners = await ctx.client(cmd).releases().status({ cluster: o.cluster });
      if (ctx.json(cmd)) return ctx.io.out(messageJson(RunnerReleaseStatusSchema, runners));
      ctx.io.out(
        table(
          ["RUNNER", "CLUSTER", "RELEASE", "STATE", "RESTARTS", "ERROR", "REPORTED"],
          runners.flatMap((r) =>
            (r.releases.length > 0 ? r.releases : [undefined]).map((s) => [
              r.runnerId,
              r.clusterSlug,
              s ? `${s.name}@${s.version}` : "-",
              s ? (releaseLoadStateName(s.state) ?? "-") : "-",
              s ? String(s.restarts) : "-",
              orDash(s?.error.split("\n")[0]),
              time(r.reportTime),
            ]),
          ),
        ),
      );
    });
}
