// `npx tsx test/bench/fanout-fairness.ts`: how long another team's one-task jobs take (submit to
// completed) while one team fans out 100,000 subtasks (10 roots of 10,000, the most one result may
// carry), against the same pings on an idle suite. Prints one JSON line per phase, then both.
//
//   npx tsx test/bench/fanout-fairness.ts [--roots 10] [--fanout 10000] [--pings 50]
import { fork, type ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { JobState } from "@corral/proto";
import { Task } from "@corral/sdk";
import { startSuite } from "../support/suite.js";
import { startRunner, suiteClient, suiteRunner } from "../support/clients.js";

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: { roots: { type: "string" }, fanout: { type: "string" }, pings: { type: "string" } },
});
const roots = Number(args.roots ?? 10);
const fanout = Number(args.fanout ?? 10_000);
const pingCount = Number(args.pings ?? 50);

class Pong extends Task<object> {
  static override identifier = { name: "fair/Pong", version: "v1.0" };
  override execute(): void {}
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function summary(phase: string, samples: number[], extra: Record<string, unknown> = {}) {
  const s = [...samples].sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 10) / 10;
  return { phase, pings: s.length, p50_ms: round(percentile(s, 50)), p95_ms: round(percentile(s, 95)), max_ms: round(s.at(-1) ?? NaN), ...extra };
}

const suite = await startSuite({
  label: "bench_fairness",
  env: { CORRAL_QUOTA_SUBMISSIONS_PER_SECOND: "100000", LOG_LEVEL: "warn" },
});
const children: ChildProcess[] = [];
try {
  const other = await suite.newTeam("fair-other");
  const otherClient = suiteClient(suite, other.key);
  const big = suiteClient(suite);
  const pongRunner = await startRunner(suiteRunner(suite, { tasks: [Pong], concurrency: 4 }, other.key));

  // The fan-out team's runners: two processes of the benchmark runner (FanOut, Noop).
  for (let i = 0; i < 2; i++) {
    const child = fork(join(here, "corral-runner.ts"), [], {
      execArgv: ["--import", "tsx"],
      env: { ...process.env, BENCH_BROKER_URL: suite.broker.url, BENCH_API_KEY: suite.apiKey, BENCH_SLOTS: "50" },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    children.push(child);
    await new Promise<void>((resolve, reject) => {
      child.on("message", (m: { type?: string }) => m?.type === "ready" && resolve());
      child.once("exit", (code) => reject(new Error(`runner exited with ${code}`)));
    });
  }

  async function ping(): Promise<number> {
    const t0 = performance.now();
    const job = await otherClient.jobs().submit("ping", new Pong({}));
    const done = await otherClient.jobs().wait(job.id);
    if (done.state !== JobState.COMPLETED) throw new Error(`ping job ended ${JobState[done.state]}`);
    return performance.now() - t0;
  }

  for (let i = 0; i < 5; i++) await ping(); // warm-up
  const idle: number[] = [];
  for (let i = 0; i < pingCount; i++) idle.push(await ping());
  const idleRow = summary("idle", idle);
  console.log(JSON.stringify(idleRow));

  const fanOut = { name: "bench/FanOut", version: "v1.0" };
  const { rawTask } = await import("@corral/sdk");
  const t0 = performance.now();
  const job = await big.jobs().submit("fan-out", Array.from({ length: roots }, () => rawTask(fanOut, { n: fanout })));
  const bigDone = big.jobs().wait(job.id);
  let finished = false;
  void bigDone.then(() => (finished = true));
  const during: number[] = [];
  while (!finished) during.push(await ping());
  const bigJob = await bigDone;
  const fanRow = summary("during_fanout", during, {
    subtasks: roots * fanout,
    fanout_s: Math.round((performance.now() - t0) / 100) / 10,
    fanout_state: JobState[bigJob.state],
  });
  console.log(JSON.stringify(fanRow));
  console.log(`\nother team's one-task jobs, submit to completed (ms):`);
  console.table([idleRow, fanRow]);
  await pongRunner.runner.stop();
} finally {
  for (const c of children) c.send({ type: "stop" });
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode === null ? c.once("exit", r) : r(null)))));
  await suite.stop();
}
