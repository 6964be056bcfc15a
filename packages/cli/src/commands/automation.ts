// corral automation create|list|get|update|pause|resume|delete
import type { Command } from "commander";
import { AutomationSchema, type Automation, type Trigger } from "@corral/proto";
import { jobStateName, type AutomationInput, type TriggerInput } from "@corral/sdk";
import { collect, intArg, type CliContext } from "../context.js";
import { UsageError } from "../exit-codes.js";
import { details, messageJson, orDash, table, time } from "../output.js";

function triggerText(t: Trigger): string {
  switch (t.kind.case) {
    case "cron":
      return `cron ${t.kind.value.schedule}${t.kind.value.timeZone ? ` (${t.kind.value.timeZone})` : ""}`;
    case "directory":
      return `dir ${t.kind.value.path}`;
    case "s3":
      return `s3://${t.kind.value.bucket}/${t.kind.value.prefix}${t.kind.value.endpoint ? ` at ${t.kind.value.endpoint}` : ""}`;
    default:
      return "-";
  }
}

function show(ctx: CliContext, cmd: Command, a: Automation): void {
  if (ctx.json(cmd)) return ctx.io.out(messageJson(AutomationSchema, a));
  const id = a.prototype?.identifier;
  ctx.io.out(
    details([
      ["id", a.id],
      ["name", a.name],
      ["task", id ? `${id.name}@${id.version}` : "-"],
      ["input", new TextDecoder().decode(a.prototype?.input ?? new Uint8Array())],
      ["cluster", orDash(a.clusterSlug)],
      ["triggers", a.triggers.map(triggerText).join("; ")],
      ["paused", a.paused ? "yes" : "no"],
      ["next fires", a.nextFireTimes.map((t) => time(t)).join(", ") || "-"],
    ]),
  );
  if (a.recentFires.length > 0) {
    ctx.io.out(
      table(
        ["FIRE TIME", "OBJECT", "JOB", "STATE / SKIPPED"],
        a.recentFires.map((f) => [time(f.fireTime), orDash(f.object), orDash(f.jobId), f.jobId ? jobStateName(f.jobState) : f.skippedReason]),
      ),
    );
  }
}

interface TriggerOptions {
  cron: string[];
  tz?: string;
  dir: string[];
  s3: string[];
  s3Endpoint?: string;
  s3Region?: string;
  s3AccessKeyId?: string;
  s3Credentials?: string;
}

function triggersOf(o: TriggerOptions): TriggerInput[] {
  const out: TriggerInput[] = [];
  for (const c of o.cron) out.push({ cron: c, timeZone: o.tz });
  for (const d of o.dir) out.push({ directory: d });
  for (const url of o.s3) {
    const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
    if (!m) throw new UsageError(`--s3 ${JSON.stringify(url)}: expected s3://bucket/prefix`);
    out.push({
      s3: {
        bucket: m[1]!,
        prefix: m[2]!,
        endpoint: o.s3Endpoint,
        region: o.s3Region,
        accessKeyId: o.s3AccessKeyId,
        secretAccessKeyRef: o.s3Credentials,
      },
    });
  }
  return out;
}

function withTriggerOptions(c: Command): Command {
  return c
    .option("--cron <schedule>", "a cron schedule: five fields, six with seconds, or @hourly, @daily, ... (repeatable)", collect, [])
    .option("--tz <zone>", "IANA time zone of the cron schedules (default UTC)")
    .option("--dir <path>", "fire for each new file under this directory (repeatable)", collect, [])
    .option("--s3 <url>", "fire for each new object under s3://bucket/prefix (repeatable)", collect, [])
    .option("--s3-endpoint <url>", "S3-compatible server (default AWS)")
    .option("--s3-region <region>", "signing region (default us-east-1)")
    .option("--s3-access-key-id <id>", "access key id")
    .option("--s3-credentials <ref>", "the secret key as a reference job-service reads: env:NAME or file:/path");
}

function parseInput(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new UsageError(`--input is not JSON: ${(err as Error).message}`);
  }
}

type Policies = { overlap?: string; catchUp?: string };
function policies(o: Policies): Pick<AutomationInput, "overlap" | "catchUp"> {
  if (o.overlap !== undefined && o.overlap !== "allow" && o.overlap !== "skip") throw new UsageError("--overlap: allow or skip");
  if (o.catchUp !== undefined && o.catchUp !== "skip" && o.catchUp !== "run-last") throw new UsageError("--catch-up: skip or run-last");
  return { overlap: o.overlap as AutomationInput["overlap"], catchUp: o.catchUp as AutomationInput["catchUp"] };
}

export function registerAutomationCommands(program: Command, ctx: CliContext): void {
  const automation = program.command("automation").description("cron schedules and new storage objects that submit jobs");

  withTriggerOptions(
    automation
      .command("create <name>")
      .requiredOption("--task <identifier>", "the task to submit, name@vMAJOR.MINOR")
      .option("--input <json>", "the task's input, a JSON object (each fire adds scheduledTime or object)")
      .option("-c, --cluster <slug>", "cluster the jobs run on (default: the team's default cluster)")
      .option("--max-retries <n>", "retries of the task", intArg(0, 1000), 0)
      .option("--overlap <policy>", "allow (default) or skip while a previous job runs")
      .option("--catch-up <policy>", "after downtime: skip (default) missed fire times or run-last")
      .option("--paused", "create it paused"),
  ).action(async (name: string, o: TriggerOptions & Policies & { task: string; input?: string; cluster?: string; maxRetries: number; paused?: boolean }, cmd: Command) => {
    const triggers = triggersOf(o);
    if (triggers.length === 0) throw new UsageError("give at least one trigger: --cron, --dir or --s3");
    show(
      ctx,
      cmd,
      await ctx.client(cmd).automations().create({
        name,
        task: o.task,
        input: parseInput(o.input),
        cluster: o.cluster,
        maxRetries: o.maxRetries,
        triggers,
        paused: o.paused,
        ...policies(o),
      }),
    );
  });

  automation
    .command("list")
    .alias("ls")
    .action(async (_o: unknown, cmd: Command) => {
      const all = await ctx.client(cmd).automations().all();
      if (ctx.json(cmd)) return ctx.io.out(messageJson(AutomationSchema, all));
      ctx.io.out(
        table(
          ["ID", "NAME", "TASK", "CLUSTER", "TRIGGERS", "PAUSED"],
          all.map((a) => [
            a.id,
            a.name,
            a.prototype?.identifier ? `${a.prototype.identifier.name}@${a.prototype.identifier.version}` : "-",
            orDash(a.clusterSlug),
            a.triggers.map(triggerText).join("; "),
            a.paused ? "yes" : "no",
          ]),
        ),
      );
    });

  automation
    .command("get <id>")
    .option("--next <n>", "next fire times to show", intArg(1, 100), 5)
    .option("--fires <n>", "last fires to show", intArg(1, 1000), 20)
    .action(async (id: string, o: { next: number; fires: number }, cmd: Command) => {
      show(ctx, cmd, await ctx.client(cmd).automations().find(id, { nextFires: o.next, recentFires: o.fires }));
    });

  withTriggerOptions(
    automation
      .command("update <id>")
      .description("change what is given; any trigger option replaces all triggers")
      .option("--name <name>")
      .option("--task <identifier>")
      .option("--input <json>")
      .option("-c, --cluster <slug>")
      .option("--overlap <policy>")
      .option("--catch-up <policy>"),
  ).action(async (id: string, o: TriggerOptions & Policies & { name?: string; task?: string; input?: string; cluster?: string }, cmd: Command) => {
    const triggers = triggersOf(o);
    if (o.input !== undefined && o.task === undefined) throw new UsageError("--input needs --task (the prototype is replaced as a whole)");
    show(
      ctx,
      cmd,
      await ctx.client(cmd).automations().update(id, {
        name: o.name,
        task: o.task,
        input: parseInput(o.input),
        cluster: o.cluster,
        triggers: triggers.length > 0 ? triggers : undefined,
        ...policies(o),
      }),
    );
  });

  automation.command("pause <id>").action(async (id: string, _o: unknown, cmd: Command) => {
    show(ctx, cmd, await ctx.client(cmd).automations().pause(id));
  });

  automation.command("resume <id>").action(async (id: string, _o: unknown, cmd: Command) => {
    show(ctx, cmd, await ctx.client(cmd).automations().resume(id));
  });

  automation
    .command("delete <id>")
    .alias("rm")
    .description("delete the automation (the jobs it submitted stay)")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      await ctx.client(cmd).automations().delete(id);
      ctx.io.out(ctx.json(cmd) ? JSON.stringify({ deleted: id }) : `deleted ${id}`);
    });
}
