// corral cluster create|list|get|update|delete
import type { Command } from "commander";
import { ClusterSchema, type Cluster } from "@corral/proto";
import { formatMemory, type ClusterSpecInput } from "@corral/sdk";
import { intArg, type CliContext } from "../context.js";
import { details, messageJson, orDash, table, time } from "../output.js";

interface SpecFlags {
  runners?: number;
  cpu?: number;
  gpu?: number;
  memory?: string;
  hardware?: string;
  software?: string;
  idleTimeout?: number;
}

function addSpecOptions(cmd: Command): Command {
  return cmd
    .option("--runners <n>", "runner count", intArg(0, 100000))
    .option("--cpu <n>", "CPU cores per runner", intArg(0, 100000))
    .option("--gpu <n>", "GPUs per runner", intArg(0, 1024))
    .option("--memory <size>", 'memory per runner, e.g. "16 GiB"')
    .option("--hardware <id>", "hardware profile id")
    .option("--software <env>", "software environment: an image or a workflow release")
    .option("--idle-timeout <seconds>", "idle timeout in seconds", intArg(0, 31536000));
}

function specFrom(f: SpecFlags): ClusterSpecInput | undefined {
  const spec: ClusterSpecInput = {
    runnerCount: f.runners,
    runnerCpuCores: f.cpu,
    runnerGpuCount: f.gpu,
    runnerMemory: f.memory,
    hardwareId: f.hardware,
    softwareEnvironment: f.software,
    idleTimeoutSeconds: f.idleTimeout,
  };
  return Object.values(spec).some((v) => v !== undefined) ? spec : undefined;
}

function describeSpec(c: Cluster): string {
  const s = c.spec;
  if (!s) return "-";
  const parts: string[] = [];
  if (s.runnerCount !== undefined) parts.push(`${s.runnerCount} runners`);
  if (s.runnerCpuCores !== undefined) parts.push(`${s.runnerCpuCores} cpu`);
  if (s.runnerGpuCount) parts.push(`${s.runnerGpuCount} gpu`);
  if (s.runnerMemoryBytes !== undefined) parts.push(formatMemory(s.runnerMemoryBytes));
  if (s.hardwareId) parts.push(`hw ${s.hardwareId}`);
  if (s.softwareEnvironment) parts.push(s.softwareEnvironment);
  if (s.idleTimeoutSeconds !== undefined) parts.push(`idle ${s.idleTimeoutSeconds}s`);
  return parts.join(", ") || "-";
}

function show(ctx: CliContext, cmd: Command, cluster: Cluster): void {
  if (ctx.json(cmd)) return ctx.io.out(messageJson(ClusterSchema, cluster));
  ctx.io.out(
    details([
      ["slug", cluster.slug],
      ["name", cluster.name],
      ["description", orDash(cluster.description)],
      ["default", cluster.isDefault ? "yes" : "no"],
      ["spec", describeSpec(cluster)],
      ["configuration", orDash(cluster.spec?.configuration)],
      ["location", orDash(cluster.spec?.locationId)],
      ["created", time(cluster.createTime)],
    ]),
  );
}

export function registerClusterCommands(program: Command, ctx: CliContext): void {
  const cluster = program.command("cluster").description("manage clusters: groups of runners that jobs are submitted to");

  addSpecOptions(
    cluster
      .command("create <name>")
      .description("create a cluster")
      .option("-d, --description <text>", "description")
      .option("--slug <slug>", "choose the slug instead of name-<random>")
      .option("--location <id>", "location id")
      .option("--configuration <name>", "fill the spec from a saved configuration")
      .option("--get-if-exists", "return the existing cluster of this name"),
  ).action(async (name: string, o: SpecFlags & Record<string, string | boolean | undefined>, cmd: Command) => {
    const c = await ctx.client(cmd).clusters().create(name, {
      description: o.description as string | undefined,
      slug: o.slug as string | undefined,
      location: o.location as string | undefined,
      configuration: o.configuration as string | undefined,
      getIfExists: Boolean(o.getIfExists),
      spec: specFrom(o),
    });
    show(ctx, cmd, c);
  });

  cluster
    .command("list")
    .alias("ls")
    .description("list the team's clusters")
    .action(async (_o: unknown, cmd: Command) => {
      const all = await ctx.client(cmd).clusters().all();
      if (ctx.json(cmd)) return ctx.io.out(messageJson(ClusterSchema, all));
      ctx.io.out(
        table(
          ["SLUG", "NAME", "DEFAULT", "SPEC", "CREATED"],
          all.map((c) => [c.slug, c.name, c.isDefault ? "yes" : "", describeSpec(c), time(c.createTime)]),
        ),
      );
    });

  cluster
    .command("get [slug]")
    .description("show a cluster (without a slug: the default cluster)")
    .action(async (slug: string | undefined, _o: unknown, cmd: Command) => {
      show(ctx, cmd, await ctx.client(cmd).clusters().find(slug ?? ""));
    });

  addSpecOptions(
    cluster
      .command("update <slug>")
      .description("change a cluster's name, description or spec")
      .option("--name <name>", "new name")
      .option("-d, --description <text>", "new description"),
  ).action(async (slug: string, o: SpecFlags & { name?: string; description?: string }, cmd: Command) => {
    const c = await ctx.client(cmd).clusters().update(slug, { name: o.name, description: o.description, spec: specFrom(o) });
    show(ctx, cmd, c);
  });

  cluster
    .command("delete <slug>")
    .alias("rm")
    .description("delete a cluster")
    .action(async (slug: string, _o: unknown, cmd: Command) => {
      await ctx.client(cmd).clusters().delete(slug);
      if (ctx.json(cmd)) return ctx.io.out(JSON.stringify({ deleted: slug }));
      ctx.io.out(`deleted ${slug}`);
    });
}
