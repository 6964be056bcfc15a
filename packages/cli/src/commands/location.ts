// corral location create|list|get|update|delete
import type { Command } from "commander";
import { LocationSchema, type Location } from "@corral/proto";
import type { CliContext } from "../context.js";
import { details, messageJson, orDash, table, time } from "../output.js";

function show(ctx: CliContext, cmd: Command, l: Location): void {
  if (ctx.json(cmd)) return ctx.io.out(messageJson(LocationSchema, l));
  ctx.io.out(details([["id", l.id], ["name", l.name], ["provider", l.provider], ["region", orDash(l.region)], ["created", time(l.createTime)]]));
}

export function registerLocationCommands(program: Command, ctx: CliContext): void {
  const location = program.command("location").description("where clusters run: a provider and a region");

  location
    .command("create <name>")
    .requiredOption("--provider <provider>", "e.g. aws, gcp, on-prem")
    .option("--region <region>", "e.g. eu-west-1")
    .action(async (name: string, o: { provider: string; region?: string }, cmd: Command) => {
      show(ctx, cmd, await ctx.client(cmd).locations().create({ name, provider: o.provider, region: o.region }));
    });

  location
    .command("list")
    .alias("ls")
    .action(async (_o: unknown, cmd: Command) => {
      const all = await ctx.client(cmd).locations().all();
      if (ctx.json(cmd)) return ctx.io.out(messageJson(LocationSchema, all));
      ctx.io.out(table(["ID", "NAME", "PROVIDER", "REGION"], all.map((l) => [l.id, l.name, l.provider, orDash(l.region)])));
    });

  location
    .command("get <id>")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      show(ctx, cmd, await ctx.client(cmd).locations().find(id));
    });

  location
    .command("update <id>")
    .option("--name <name>")
    .option("--provider <provider>")
    .option("--region <region>")
    .action(async (id: string, o: { name?: string; provider?: string; region?: string }, cmd: Command) => {
      show(ctx, cmd, await ctx.client(cmd).locations().update(id, o));
    });

  location
    .command("delete <id>")
    .alias("rm")
    .description("delete a location no cluster or configuration spec names")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      await ctx.client(cmd).locations().delete(id);
      ctx.io.out(ctx.json(cmd) ? JSON.stringify({ deleted: id }) : `deleted ${id}`);
    });
}
