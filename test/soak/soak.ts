// Soak: keeps a steady flow of tasks through the three services (two broker replicas) while
// runners join and leave, then checks that every task was recorded exactly once and reports the
// broker's and job-service's memory at the start and the end. Not part of `npm test`:
//   npm run test:soak                                   (10,000 tasks/minute for 10 minutes)
//   CORRAL_SOAK_MINUTES=1 npm run test:soak             (a short run)
// Env: CORRAL_SOAK_MINUTES (10), CORRAL_SOAK_TASKS_PER_MINUTE (10000), CORRAL_SOAK_MAX_GROWTH_MB
// (150: the most the broker's or job-service's resident memory may grow), CORRAL_SOAK_CHURN
// (30s: how often one runner leaves, by SIGTERM or by kill -9 in turn, and another joins).
import { readFileSync } from "node:fs";
import { parseDurationMs } from "@corral/server-kit";
import { startFaultSuite, type RunnerProcess } from "../faults/support/fault-suite.js";

const minutes = Number(process.env.CORRAL_SOAK_MINUTES ?? 10);
const perMinute = Number(process.env.CORRAL_SOAK_TASKS_PER_MINUTE ?? 10_000);
const maxGrowthMb = Number(process.env.CORRAL_SOAK_MAX_GROWTH_MB ?? 150);
const churnMs = parseDurationMs(process.env.CORRAL_SOAK_CHURN ?? "30s") ?? 30_000;
const RUNNERS = 4;
// Long enough that the flow is continuous (about 70 tasks running at once) and a runner that leaves
// holds work.
const TASK_MS = 400;

function rssMb(pid: number | undefined): number {
  if (!pid) return 0;
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const suite = await startFaultSuite({ label: "soak", brokers: 2, env: { LOG_LEVEL: "warn", CORRAL_LEASE_DURATION: "10s" } });
  const runners: RunnerProcess[] = [];
  let failed = false;
  try {
    for (let i = 0; i < RUNNERS; i++) runners.push(await suite.startRunner(40));
    // One job a second, each a Fan task that spawns the rest of the second's tasks.
    const perJob = Math.max(1, Math.round(perMinute / 60) - 1);
    const ids: string[] = [];
    const memory = () => ({
      brokers: suite.brokers.map((b) => rssMb(b.child.pid)),
      jobService: rssMb(suite.jobs.child.pid),
    });
    const started = Date.now();
    const end = started + minutes * 60_000;
    let start: ReturnType<typeof memory> | undefined;
    let joins = 0;
    let leaves = 0;
    let nextChurn = started + churnMs;
    let tick = started;
    while (Date.now() < end) {
      ids.push(...(await suite.submitWorkload(1, perJob, TASK_MS)));
      // Memory "at start" once the flow is steady (after the first churn period at the latest).
      if (!start && Date.now() - started >= Math.min(30_000, churnMs)) start = memory();
      if (Date.now() >= nextChurn) {
        // Every other runner leaves abruptly (kill -9: its leases expire), the others drain.
        const leaving = runners.shift()!;
        if (leaves % 2 === 1) await leaving.kill9();
        else await leaving.stop();
        leaves++;
        runners.push(await suite.startRunner(40));
        joins++;
        nextChurn += churnMs;
      }
      tick += 1_000;
      await sleep(Math.max(0, tick - Date.now()));
    }
    const submittedFor = (Date.now() - started) / 60_000;
    await suite.waitJobs(ids, 10 * 60_000);
    const drainedAfter = (Date.now() - started) / 60_000;
    const finish = memory();
    const result = await suite.check(ids, perJob);
    start ??= finish;
    const growth = Math.max(
      finish.jobService - start.jobService,
      ...finish.brokers.map((b, i) => b - (start!.brokers[i] ?? b)),
    );
    const report = {
      minutes,
      tasksPerMinuteTarget: perMinute,
      tasks: result.tasksExpected,
      tasksPerMinuteAchieved: Math.round(result.tasksComputed / drainedAfter),
      submittedForMinutes: Math.round(submittedFor * 100) / 100,
      drainedAfterMinutes: Math.round(drainedAfter * 100) / 100,
      runnerJoins: joins,
      runnerLeaves: leaves,
      lost: result.lost,
      duplicates: result.duplicates,
      extraAttempts: result.extraAttempts,
      memoryMbAtStart: start,
      memoryMbAtEnd: finish,
      maxGrowthMb: growth,
      maxGrowthAllowedMb: maxGrowthMb,
    };
    console.log(JSON.stringify(report, null, 2));
    if (result.lost > 0 || result.duplicates > 0 || result.completedJobs !== ids.length || growth > maxGrowthMb) {
      failed = true;
      console.error("soak FAILED");
    } else console.log("soak passed");
  } catch (err) {
    failed = true;
    console.error(err);
    console.error(suite.logs().slice(-5_000));
  } finally {
    await suite.stop();
  }
  process.exit(failed ? 1 : 0);
}

await main();
