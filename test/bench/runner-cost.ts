// The runners' CPU per task with two versions of the SDK's runner against one suite (this
// checkout's services): 2 runner processes of 50 slots from each checkout in turn, the order
// swapped every round, each running 10,000 root tasks and a fan-out of 10,000 after a warm-up of
// 2,000. Prints one JSON line per side and round.
//   npx tsx test/bench/runner-cost.ts <checkout A> <checkout B> [rounds, default 4]
// Each checkout needs its own `npm install` (its runner resolves its own @corral/sdk).
import { fork, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { JobState } from "@corral/proto";
import { Client, rawTask } from "@corral/sdk";
import { startSuite } from "../support/suite.js";
import { procStats, waitJob } from "./bench-kit.js";

const [a, b] = [process.argv[2], process.argv[3]].map((d) => (d ? resolve(d) : undefined));
if (!a || !b) throw new Error("usage: runner-cost.ts <checkout A> <checkout B> [rounds]");
const rounds = Number(process.argv[4] ?? 4);

/** CPU of a process so far, ms (10 ms ticks). */
const cpuMs = (pid: number) => procStats(pid).cpuTicks * 10;

const suite = await startSuite({ label: "bench-runner-cost", env: { CORRAL_QUOTA_SUBMISSIONS_PER_SECOND: "100000" } });
const client = new Client({ url: suite.jobs.url, apiKey: suite.apiKey });

function startRunners(checkout: string): Promise<ChildProcess[]> {
  return Promise.all(
    [0, 1].map(
      () =>
        new Promise<ChildProcess>((ready, fail) => {
          const proc = fork(`${checkout}/test/bench/corral-runner.ts`, [], {
            cwd: checkout,
            execArgv: ["--import", "tsx"],
            env: { ...process.env, CORRAL_LOG_LEVEL: "error", BENCH_BROKER_URL: suite.broker.url, BENCH_API_KEY: suite.apiKey, BENCH_SLOTS: "50" },
            stdio: ["ignore", "inherit", "inherit", "ipc"],
          });
          proc.on("message", (m: { type?: string }) => m.type === "ready" && ready(proc));
          proc.once("exit", (code) => fail(new Error(`a runner of ${checkout} exited with ${code}`)));
        }),
    ),
  );
}

async function runJob(shape: "roots" | "fanout", n: number): Promise<void> {
  const tasks = shape === "roots" ? Array.from({ length: n }, () => rawTask({ name: "bench/Noop", version: "v1.0" })) : [rawTask({ name: "bench/FanOut", version: "v1.0" }, { n })];
  const job = await client.jobs().submit(`runner-cost-${shape}`, tasks);
  const state = await waitJob(client, job.id, 20);
  if (state !== JobState.COMPLETED) throw new Error(`the job ended ${JobState[state]}`);
}

try {
  for (let round = 0; round < rounds; round++) {
    for (const checkout of round % 2 === 0 ? [a, b] : [b, a]) {
      const runners = await startRunners(checkout);
      const cpu = () => runners.reduce((sum, r) => sum + cpuMs(r.pid!), 0);
      await runJob("roots", 2_000);
      const us: Record<string, number> = {};
      for (const shape of ["roots", "fanout"] as const) {
        const before = cpu();
        await runJob(shape, 10_000);
        us[shape] = Math.round(((cpu() - before) * 1000) / 10_000);
      }
      console.log(JSON.stringify({ round, checkout, runner_cpu_us_per_task: us }));
      for (const r of runners) r.kill("SIGTERM");
      await new Promise((r) => setTimeout(r, 500));
    }
  }
} finally {
  await suite.stop();
}
