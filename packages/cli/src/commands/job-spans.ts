// corral job spans <id>: a job's trace as a waterfall of task attempts, or as JSON.
import type { Command } from "commander";
import { intArg, type CliContext } from "../context.js";
import { jsonText } from "../output.js";
import { renderWaterfall } from "../span-waterfall.js";

export function registerJobSpansCommand(job: Command, ctx: CliContext): void {
  job
    .command("spans <id>")
    .description("show a job's trace: each task attempt as a span under its parent's, with wait and run times")
    .option("--width <columns>", "columns of the time bars", intArg(10, 400), 48)
    .action(async (id: string, o: { width: number }, cmd: Command) => {
      const trace = await ctx.client(cmd).jobs().spans(id);
      if (ctx.json(cmd)) return ctx.io.out(jsonText(trace));
      for (const line of renderWaterfall(trace, { width: o.width, now: new Date() })) ctx.io.out(line);
    });
}
