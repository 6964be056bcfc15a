// A benchmark runner process: the SDK Runner serving no-op, fan-out (one and two levels) and ping tasks. Started by
// run.ts with fork(); tells its parent when it is connected and, for pings, when execute began.
import { Runner, Task, type ExecutionContext } from "@corral/sdk";

export class Noop extends Task<undefined> {
  static override identifier = { name: "bench/Noop", version: "v1.0" };
  override execute(): void {}
}

/** Submits `n` no-op subtasks. */
export class FanOut extends Task<{ n: number }> {
  static override identifier = { name: "bench/FanOut", version: "v1.0" };
  override execute(ctx: ExecutionContext): void {
    for (let i = 0; i < this.input.n; i++) ctx.submitSubtask(new Noop());
  }
}

/**
 * Submits `n` no-op subtasks through FanOut children of at most `chunk` each: one result carries
 * at most MAX_SUBTASKS_PER_RESULT subtasks, so a bigger job fans out in two levels.
 */
export class BigFanOut extends Task<{ n: number; chunk: number }> {
  static override identifier = { name: "bench/BigFanOut", version: "v1.0" };
  override execute(ctx: ExecutionContext): void {
    const { n, chunk } = this.input;
    for (let i = 0; i < n; i += chunk) ctx.submitSubtask(new FanOut({ n: Math.min(chunk, n - i) }));
  }
}

/** Reports the moment execute starts (wall clock, sub-millisecond) to the benchmark. */
export class Ping extends Task<{ seq: number }> {
  static override identifier = { name: "bench/Ping", version: "v1.0" };
  override execute(): void {
    process.send?.({ type: "started", seq: this.input.seq, at: performance.timeOrigin + performance.now() });
  }
}

if (process.send) {
  const runner = new Runner({
    url: process.env.BENCH_BROKER_URL!,
    apiKey: process.env.BENCH_API_KEY!,
    tasks: [Noop, FanOut, BigFanOut, Ping],
    concurrency: Number(process.env.BENCH_SLOTS ?? 50),
    drainGraceMs: 2_000,
    ackTimeoutMs: 2_000,
  });
  runner.on("welcome", () => process.send?.({ type: "ready" }));
  process.on("message", (m: { type?: string }) => {
    if (m?.type === "stop") void runner.stop();
  });
  process.on("disconnect", () => void runner.stop());
  runner
    .runForever({ handleSignals: true })
    .then(() => process.exit(0))
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}
