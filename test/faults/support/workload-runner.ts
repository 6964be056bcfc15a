// A runner process for fault tests: serves faults/Fan (spawns `n` faults/Work subtasks) and
// faults/Work (sleeps `ms`, counts one unit of "work" progress). Prints READY once welcomed and one
// line per execution (`EXEC <task id> <attempt>`) so a test can count what ran where.
// Env: CORRAL_URL, CORRAL_API_KEY, FAULT_CLUSTER, FAULT_CONCURRENCY.
import { Runner, Task, createSdkLogger, type ExecutionContext } from "@corral/sdk";

class Fan extends Task<{ n: number; ms: number }> {
  static override identifier = { name: "faults/Fan", version: "v1.0" };
  override execute(ctx: ExecutionContext) {
    for (let i = 0; i < this.input.n; i++) ctx.submitSubtask(new Work({ ms: this.input.ms, i }));
  }
}

class Work extends Task<{ ms: number; i: number }> {
  static override identifier = { name: "faults/Work", version: "v1.0" };
  override async execute(ctx: ExecutionContext) {
    process.stdout.write(`EXEC ${ctx.task.id} ${ctx.task.attempt}\n`);
    await new Promise((r) => setTimeout(r, this.input.ms));
    ctx.progress("work").add(1).done(1);
  }
}

const runner = new Runner({
  cluster: process.env.FAULT_CLUSTER ?? "",
  tasks: [Fan, Work],
  concurrency: Number(process.env.FAULT_CONCURRENCY ?? 20),
  logger: createSdkLogger("fault-runner", process.env.FAULT_RUNNER_LOG ?? "warn"),
  reconnect: { baseDelayMs: 100, maxDelayMs: 1_000 },
  drainGraceMs: 2_000,
  ackTimeoutMs: 2_000,
});
runner.on("welcome", () => process.stdout.write("READY\n"));
await runner.runForever();
