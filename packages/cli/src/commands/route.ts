// corral route create|list|get|delete: gateway routes (a task identifier to an HTTP endpoint).
import { InvalidArgumentError, type Command } from "commander";
import { RouteSchema, type Route } from "@corral/proto";
import { parseIdentifier, type HttpMethod } from "@corral/sdk";
import { durationArg, intArg, type CliContext } from "../context.js";
import { details, messageJson, table, time } from "../output.js";

/** Commander collector for repeatable `Name: value` headers. */
function collectHeader(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const i = value.indexOf(":");
  if (i <= 0) throw new InvalidArgumentError(`expected "Name: value", got ${JSON.stringify(value)}`);
  return { ...previous, [value.slice(0, i).trim()]: value.slice(i + 1).trim() };
}

function retryText(r: Route): string {
  const n = r.retry?.maxAttempts ?? 1;
  return n <= 1 ? "no retry" : `${n} calls, backoff ${r.retry?.initialBackoffMs} ms doubling to ${r.retry?.maxBackoffMs} ms`;
}

function show(ctx: CliContext, cmd: Command, r: Route): void {
  if (ctx.json(cmd)) return ctx.io.out(messageJson(RouteSchema, r));
  ctx.io.out(
    details([
      ["id", r.id],
      ["identifier", `${r.identifier?.name}@${r.identifier?.version}`],
      ["endpoint", `${r.method} ${r.url}`],
      // Names only: values often carry credentials (--json prints them).
      ["headers", Object.keys(r.headers).join(", ") || "-"],
      ["timeout", `${r.timeoutMs} ms`],
      ["retry", retryText(r)],
      ["description", r.description || "-"],
      ["created", time(r.createTime)],
    ]),
  );
}

export function registerRouteCommands(program: Command, ctx: CliContext): void {
  const route = program.command("route").description("gateway routes: tasks of an identifier executed by calling an HTTP endpoint (corral gateway)");

  route
    .command("create <identifier> <url>")
    .description("route tasks of <identifier> (name@vMAJOR.MINOR) to <url>: the task's input is sent as JSON, the answer is its output")
    .option("-X, --method <method>", "GET, POST, PUT, PATCH or DELETE", "POST")
    .option("-H, --header <header>", '"Name: value" sent with every call (repeatable)', collectHeader, {})
    .option("--timeout <duration>", 'one call\'s limit, e.g. "10s" (default 30s)', durationArg)
    .option("--attempts <n>", "calls in all after 5xx answers, timeouts and connection errors (default 1: no retry)", intArg(1, 10))
    .option("--backoff <duration>", "wait before the first retry, doubled each time (default 200ms)", durationArg)
    .option("--max-backoff <duration>", "longest wait between calls (default 10s)", durationArg)
    .option("--description <text>", "what the endpoint is")
    .action(
      async (
        identifier: string,
        url: string,
        o: { method: string; header: Record<string, string>; timeout?: number; attempts?: number; backoff?: number; maxBackoff?: number; description?: string },
        cmd: Command,
      ) => {
        const created = await ctx.client(cmd).routes().create({
          identifier: parseIdentifier(identifier),
          url,
          method: o.method.toUpperCase() as HttpMethod,
          headers: o.header,
          timeoutMs: o.timeout,
          retry: { maxAttempts: o.attempts, initialBackoffMs: o.backoff, maxBackoffMs: o.maxBackoff },
          description: o.description,
        });
        show(ctx, cmd, created);
      },
    );

  route
    .command("list")
    .alias("ls")
    .action(async (_o: unknown, cmd: Command) => {
      const all = await ctx.client(cmd).routes().all();
      if (ctx.json(cmd)) return ctx.io.out(messageJson(RouteSchema, all));
      ctx.io.out(
        table(
          ["ID", "IDENTIFIER", "ENDPOINT", "TIMEOUT", "RETRY"],
          all.map((r) => [r.id, `${r.identifier?.name}@${r.identifier?.version}`, `${r.method} ${r.url}`, `${r.timeoutMs} ms`, retryText(r)]),
        ),
      );
    });

  route
    .command("get <id>")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      show(ctx, cmd, await ctx.client(cmd).routes().find(id));
    });

  route
    .command("delete <id>")
    .alias("rm")
    .description("delete a route (gateways stop taking its tasks at their next refresh)")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      await ctx.client(cmd).routes().delete(id);
      ctx.io.out(ctx.json(cmd) ? JSON.stringify({ deleted: id }) : `deleted ${id}`);
    });
}
