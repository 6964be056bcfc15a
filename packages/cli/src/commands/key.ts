// corral key create|list|revoke
import type { Command } from "commander";
import { ApiKeySchema } from "@corral/proto";
import type { CliContext } from "../context.js";
import { jsonText, messageJson, table, time } from "../output.js";

export function registerKeyCommands(program: Command, ctx: CliContext): void {
  const key = program.command("key").description("the team's API keys");

  key
    .command("create <name>")
    .description("create a key; it is shown once")
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const { apiKey, key: secret } = await ctx.client(cmd).apiKeys().create(name);
      if (ctx.json(cmd)) return ctx.io.out(jsonText({ apiKey: JSON.parse(messageJson(ApiKeySchema, apiKey)), key: secret }));
      ctx.io.out(secret);
      ctx.io.err(`created key ${apiKey.id} (${apiKey.name}); store it now, it cannot be shown again`);
    });

  key
    .command("list")
    .alias("ls")
    .action(async (_o: unknown, cmd: Command) => {
      const all = await ctx.client(cmd).apiKeys().all();
      if (ctx.json(cmd)) return ctx.io.out(messageJson(ApiKeySchema, all));
      ctx.io.out(table(["ID", "NAME", "CREATED", "REVOKED"], all.map((k) => [k.id, k.name, time(k.createTime), k.revoked ? time(k.revokeTime) : ""])));
    });

  key
    .command("revoke <id>")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const k = await ctx.client(cmd).apiKeys().revoke(id);
      ctx.io.out(ctx.json(cmd) ? messageJson(ApiKeySchema, k) : `revoked ${k.id} (${k.name})`);
    });
}
