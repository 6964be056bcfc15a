// corral cluster create|list|get|update|scale|stop|start|manifests|delete
import { create } from "@bufbuild/protobuf";
import { Option, type Command } from "commander";
import { ClusterSchema, ClusterState, ProgressIndicatorSchema, type Cluster } from "@corral/proto";
import { clusterStateName, formatMemory, type ClusterSpecInput } from "@corral/sdk";
import { renderClusterManifests } from "../cluster-manifests.js";
import { intArg, type CliContext } from "../context.js";
import { details, messageJson, orDash, table, time } from "../output.js";
import { createProgressView } from "../progress-bars.js";

interface SpecFlags {
  runners?: number;
  cpus?: number;
  gpus?: number;
  cpu?: number;
  gpu?: number;
  memory?: string;
  hardware?: string;
  software?: string;
  idleTimeout?: number;
}

function addSpecOptions(cmd: Command): Command {
  return cmd
    .option("--runners <n>", "runner count: the registry starts them on the team's hosts (corral agent)", intArg(0, 100000))
    .option("--cpus <n>", "CPU cores per runner", intArg(0, 100000))
    .option("--gpus <n>", "GPUs per runner", intArg(0, 1024))
    // The singular spellings of earlier releases still work.
    .addOption(new Option("--cpu <n>").argParser(intArg(0, 100000)).hideHelp())
    .addOption(new Option("--gpu <n>").argParser(intArg(0, 1024)).hideHelp())
    .option("--memory <size>", 'memory per runner, e.g. "16 GiB"')
    .option("--hardware <id>", "hardware profile id")
    .option("--software <env>", "software environment: an image or a workflow release")
    .option("--idle-timeout <seconds>", "idle timeout in seconds", intArg(0, 31536000));
}

function specFrom(f: SpecFlags): ClusterSpecInput | undefined {
  const spec: ClusterSpecInput = {
    runnerCount: f.runners,
    runnerCpuCores: f.cpus ?? f.cpu,
    runnerGpuCount: f.gpus ?? f.gpu,
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

function describeState(c: Cluster): string {
  const name = c.state === ClusterState.UNSPECIFIED ? "-" : clusterStateName(c.state);
  return c.stateReason ? `${name}: ${c.stateReason}` : name;
}

/** Waits for READY with a bar of runners up; fails with the cluster's reason after the timeout. */
async function waitReady(ctx: CliContext, cmd: Command, slug: string, timeoutSeconds: number): Promise<Cluster> {
  const view = ctx.json(cmd) ? undefined : createProgressView(ctx.io);
  try {
    return await ctx.client(cmd).clusters().waitReady(slug, {
      timeoutMs: timeoutSeconds * 1000,
      onProgress: (c) =>
        view?.update(describeState(c), [
          create(ProgressIndicatorSchema, { label: "runners", total: BigInt(c.desiredRunners), done: BigInt(c.runningRunners) }),
        ]),
    });
  } finally {
    view?.finish();
  }
}

function show(ctx: CliContext, cmd: Command, cluster: Cluster): void {
  if (ctx.json(cmd)) return ctx.io.out(messageJson(ClusterSchema, cluster));
  ctx.io.out(
    details([
      ["slug", cluster.slug],
      ["name", cluster.name],
      ["description", orDash(cluster.description)],
      ["default", cluster.isDefault ? "yes" : "no"],
      ["state", describeState(cluster)],
      ["runners", cluster.state === ClusterState.UNSPECIFIED ? "started by hand" : `${cluster.runningRunners}/${cluster.desiredRunners} running`],
      ["spec", describeSpec(cluster)],
      [
        "deployments",
        cluster.deployments.map((d) => `${d.release?.name ?? "?"}@${d.release?.version ?? "?"}`).join(", ") || "-",
      ],
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
      .option("--location <id or name>", "location, by id or name")
      .option("--configuration <name>", "fill the spec from a saved configuration")
      .option("--get-if-exists", "return the existing cluster of this name")
      .option("-w, --wait", "wait until its runners are running (READY), showing them come up")
      .option("--timeout <seconds>", "with --wait: fail with the cluster's reason after this long", intArg(1), 300),
  ).action(async (name: string, o: SpecFlags & Record<string, string | boolean | number | undefined>, cmd: Command) => {
    let c: Cluster = await ctx.client(cmd).clusters().create(name, {
      description: o.description as string | undefined,
      slug: o.slug as string | undefined,
      location: o.location as string | undefined,
      configuration: o.configuration as string | undefined,
      getIfExists: Boolean(o.getIfExists),
      spec: specFrom(o),
    });
    if (o.wait) c = await waitReady(ctx, cmd, c.slug, o.timeout as number);
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
          ["SLUG", "NAME", "DEFAULT", "STATE", "RUNNERS", "SPEC", "CREATED"],
          all.map((c) => [
            c.slug,
            c.name,
            c.isDefault ? "yes" : "",
            c.state === ClusterState.UNSPECIFIED ? "-" : clusterStateName(c.state),
            c.state === ClusterState.UNSPECIFIED ? "-" : `${c.runningRunners}/${c.desiredRunners}`,
            describeSpec(c),
            time(c.createTime),
          ]),
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
    .command("scale <slug> <runners>")
    .description("set how many runners a cluster asks for (spec.runner_count)")
    .option("-w, --wait", "wait until they are running (READY)")
    .option("--timeout <seconds>", "with --wait: fail with the cluster's reason after this long", intArg(1), 300)
    .action(async (slug: string, runners: string, o: { wait?: boolean; timeout: number }, cmd: Command) => {
      const count = intArg(0, 100000)(runners);
      let c = await ctx.client(cmd).clusters().update(slug, { spec: { runnerCount: count } });
      if (o.wait) c = await waitReady(ctx, cmd, c.slug, o.timeout);
      show(ctx, cmd, c);
    });

  cluster
    .command("stop <slug>")
    .description("stop a provisioned cluster: its runners drain and stop; a submitted job wakes it")
    .action(async (slug: string, _o: unknown, cmd: Command) => {
      show(ctx, cmd, await ctx.client(cmd).clusters().stop(slug));
    });

  cluster
    .command("start <slug>")
    .description("bring a stopped cluster back to its spec's runner count")
    .option("-w, --wait", "wait until its runners are running (READY)")
    .option("--timeout <seconds>", "with --wait: fail with the cluster's reason after this long", intArg(1), 300)
    .action(async (slug: string, o: { wait?: boolean; timeout: number }, cmd: Command) => {
      let c = await ctx.client(cmd).clusters().start(slug);
      if (o.wait) c = await waitReady(ctx, cmd, c.slug, o.timeout);
      show(ctx, cmd, c);
    });

  cluster
    .command("manifests <slug>")
    .description("print a runner Deployment and KEDA ScaledObject sized from the cluster's spec (the Kubernetes path)")
    .option("--image <image>", "runner image", "corral")
    .option("--broker-url <url>", "where runners reach the broker", "http://task-broker:7703")
    .option(
      "--scaler-broker-url <url>",
      "where KEDA (in its own namespace) reads the cluster's backlog from the broker",
      "http://task-broker.corral.svc.cluster.local:7703",
    )
    .action(async (slug: string, o: { image: string; brokerUrl: string; scalerBrokerUrl: string }, cmd: Command) => {
      const c = await ctx.client(cmd).clusters().find(slug);
      ctx.io.out(renderClusterManifests(c, { image: o.image, brokerUrl: o.brokerUrl, scalerBrokerUrl: o.scalerBrokerUrl }).trimEnd());
    });

  cluster
    .command("delete <slug>")
    .alias("rm")
    .description("delete a cluster (refused while it has queued or running tasks, unless --force)")
    .option("--force", "cancel the cluster's unfinished jobs, then delete it")
    .action(async (slug: string, o: { force?: boolean }, cmd: Command) => {
      const client = ctx.client(cmd);
      const canceled: string[] = [];
      if (o.force) {
        // Jobs first, so no task is left waiting for a cluster that is gone; then the registry
        // deletes without asking the broker (whose counts may still show the canceled work).
        const open = await client.jobs().query({ clusters: [slug], states: ["submitted", "running", "started"], limit: 100_000 });
        for (const j of open) {
          await client.jobs().cancel(j.id);
          canceled.push(j.id);
        }
      }
      await client.clusters().delete(slug, { force: o.force });
      if (ctx.json(cmd)) return ctx.io.out(JSON.stringify({ deleted: slug, canceledJobs: canceled }));
      ctx.io.out(`deleted ${slug}${canceled.length ? ` (canceled ${canceled.length} job${canceled.length === 1 ? "" : "s"}: ${canceled.join(", ")})` : ""}`);
    });
}
