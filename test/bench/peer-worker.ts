// A benchmark peer worker process: a BullMQ Worker or a graphile-worker runner with the same
// concurrency as a Corral runner, executing no-op jobs and reporting when a ping job starts.
import { Worker } from "bullmq";
import { Logger, run, type Runner } from "graphile-worker";

const mode = process.env.BENCH_PEER;
const concurrency = Number(process.env.BENCH_SLOTS ?? 50);

const started = (payload: unknown) => {
  const seq = (payload as { seq?: number } | undefined)?.seq;
  if (typeof seq === "number") process.send?.({ type: "started", seq, at: performance.timeOrigin + performance.now() });
};

async function main(): Promise<() => Promise<void>> {
  if (mode === "bullmq") {
    const url = new URL(process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379");
    const worker = new Worker(
      process.env.BENCH_QUEUE!,
      async (job) => {
        if (job.name === "ping") started(job.data);
      },
      {
        connection: { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null },
        prefix: process.env.BENCH_PREFIX!,
        concurrency,
      },
    );
    await worker.waitUntilReady();
    return () => worker.close();
  }
  if (mode === "graphile" || mode === "graphile-batched") {
    const batched = mode === "graphile-batched";
    const runner: Runner = await run({
      connectionString: process.env.BENCH_DATABASE_URL!,
      schema: process.env.BENCH_SCHEMA!,
      concurrency,
      noHandleSignals: true,
      taskList: {
        noop: async () => {},
        ping: async (payload) => started(payload),
      },
      // graphile-worker's documented high-throughput settings (website/docs/performance.md).
      preset: batched ? { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0 } } : undefined,
      logger: new Logger(() => () => {}),
    });
    return () => runner.stop();
  }
  throw new Error(`unknown BENCH_PEER ${mode}`);
}

if (process.send) {
  main()
    .then((close) => {
      process.send?.({ type: "ready" });
      const stop = () => void close().finally(() => process.exit(0));
      process.on("message", (m: { type?: string }) => m?.type === "stop" && stop());
      process.on("disconnect", stop);
    })
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}
