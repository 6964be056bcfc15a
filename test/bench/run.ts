// `npm run bench`: Corral's throughput, dispatch latency, queue-depth and idle-runner costs, side by
// side with BullMQ and graphile-worker on the same Redis and Postgres. Prints one JSON object per
// scenario (one line each), then a table. `--smoke` is a small run that finishes in seconds.
//
//   npm run bench -- [--tasks 10000] [--runners 2] [--slots 50] [--latency-tasks 1000] [--latency-warmup 200]
//                    [--depth 1000000] [--drain 10000] [--idle 1000,5000] [--warmup 2000] [--repeat 3]
//                    [--latency-wait poll|watch] [--only corral,keys,bullmq,...,tracing] [--smoke]
//                    [--big-tasks 100000] [--big-runners 16] (the big-job scenario)
//                    [--profile DIR] (CPU profiles of the three services, written when they stop)
//                    [--one-process] (Corral's three services in one process, as `corral dev` runs them)
//                    [--heap DIR] (the idle scenario also reports the broker's heap after a full GC,
//                    through heap-probe.mjs; with BENCH_HEAP_SNAPSHOTS=1 heap snapshots go to DIR too)
//   BENCH_SERVICE_NODE_OPTIONS: extra NODE_OPTIONS for the three service processes (experiments).
//
// Every system gets R child processes with S slots (Corral: SDK runners; BullMQ: Workers;
// graphile-worker: runners with concurrency S, as shipped and with its documented batching).
// Rates run from the submission to the last completion; `cpu_s` is each process's CPU time
// during a run (Corral's, and the peers' workers and the bench; postgres and redis-server: every
// process of those servers, so other users of the machine count too). The machine is usually
// shared: compare rows of one run.
// `throughput-keys` runs the roots shape with scheduling controls: every task names one of 100
// concurrency keys (limit 2 each) and a priority 0-9, so it shows the gated path beside the default.
// `--only tracing` (not in the default set): Corral's throughput with the services exporting
// traces over OTLP/HTTP to a receiver in this process and without, two suites side by side whose
// runs alternate; prints the cost in percent.
// `--only big-job` (not in the default set): one job of 100,000 no-op tasks (`--big-tasks`) from one
// root fanning out in two levels, run by 16 runner processes (`--big-runners`) sharing the default
// concurrency (runners x slots); prints its rate, Postgres bytes per task, job-service's peak RSS.
// `--only replicas` (not in the default set): the roots workload (as 2 jobs) on 2 brokers + 2
// job-services of one cluster and on 1 + 1, runs alternating; prints both rates and CPU per task.
import { fork, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import { JobState, MAX_SUBTASKS_PER_RESULT, TaskEnvelopeSchema, type TaskEnvelope } from "@corral/proto";
import { Client, rawTask } from "@corral/sdk";
import { Queue, QueueEvents } from "bullmq";
import { Redis } from "ioredis";
import pg from "pg";
import { makeWorkerUtils } from "graphile-worker";
import { startSuite, type Suite } from "../support/suite.js";
import { startReplicatedSuite, type ReplicatedSuite } from "../scale/support/replicated-suite.js";
import { startOtlpReceiver } from "../support/otlp-receiver.js";
// The broker's own queue store: the backlog gets exactly the stream layout the broker writes.
import { createQueueStore } from "../../services/task-broker/src/redis/queue-store.js";
import { procStats, waitJob } from "./bench-kit.js";

const here = dirname(fileURLToPath(import.meta.url));
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

const { values: args } = parseArgs({
  options: {
    tasks: { type: "string" },
    runners: { type: "string" },
    slots: { type: "string" },
    "latency-tasks": { type: "string" },
    /** Single-task pings each system runs, unmeasured, before its latency samples (the one-task path's JIT). */
    "latency-warmup": { type: "string" },
    /** How a Corral ping waits for its job to end: GetJobProgress every 2 ms (poll) or jobs().wait() (watch). */
    "latency-wait": { type: "string" },
    depth: { type: "string" },
    drain: { type: "string" },
    idle: { type: "string" },
    /** Tasks each system runs before it is measured (JIT, connections, caches). */
    warmup: { type: "string" },
    /** Runs of each Corral and BullMQ throughput shape; the row is the median run. */
    repeat: { type: "string" },
    only: { type: "string" },
    smoke: { type: "boolean", default: false },
    /** Corral's three services in one process (as `corral dev` runs them) instead of three. */
    "one-process": { type: "boolean", default: false },
    /** Writes the services' CPU profiles (inspector, see cpu-profile.mjs) into this folder. */
    profile: { type: "string" },
    /** The idle scenario also reports the broker's heap after a full GC (heap-probe.mjs writes into this folder). */
    heap: { type: "string" },
    /** Tasks of the big-job scenario's one job (plus its root and one FanOut per 10,000). */
    "big-tasks": { type: "string" },
    /** Runner processes of the big-job scenario; they share runners x slots between them. */
    "big-runners": { type: "string" },
  },
});
const smoke = args.smoke ?? false;
const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
function oneOf<T extends string>(v: string, allowed: readonly T[], flag: string): T {
  if (!(allowed as readonly string[]).includes(v)) throw new Error(`${flag} must be one of ${allowed.join(", ")}, got ${JSON.stringify(v)}`);
  return v as T;
}
const opts = {
  tasks: num(args.tasks, smoke ? 300 : 10_000), // one submission and one result hold at most 10,000 tasks
  runners: num(args.runners, 2),
  slots: num(args.slots, 50),
  latencyTasks: num(args["latency-tasks"], smoke ? 30 : 1_000),
  latencyWarmup: num(args["latency-warmup"], smoke ? 5 : 200),
  latencyWait: oneOf(args["latency-wait"] ?? "poll", ["poll", "watch"] as const, "--latency-wait"),
  depth: num(args.depth, smoke ? 2_000 : 1_000_000),
  drain: num(args.drain, smoke ? 300 : 10_000),
  idle: (args.idle ?? (smoke ? "100" : "1000,5000")).split(",").map(Number).filter((n) => n > 0),
  warmup: num(args.warmup, smoke ? 100 : 2_000),
  repeat: Math.max(1, num(args.repeat, smoke ? 1 : 3)),
  only: new Set((args.only ?? "corral,keys,bullmq,graphile,latency,depth,idle").split(",")),
  // Two presence refreshes (20 s each) fall in each sample.
  idleSampleMs: smoke ? 2_000 : 40_000,
  // Sampling starts this long after the streams opened: V8 collects the opening's garbage (one full
  // collection, about 30 s later) before the steady state is measured.
  idleSettleMs: smoke ? 0 : 35_000,
  bigTasks: num(args["big-tasks"], smoke ? 2_000 : 100_000),
  bigRunners: num(args["big-runners"], smoke ? 4 : 16),
};

type Row = Record<string, unknown> & { scenario: string; system: string };
const rows: Row[] = [];
function emit(row: Row): void {
  rows.push(row);
  process.stdout.write(JSON.stringify(row) + "\n");
}
const note = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- child processes

interface Child {
  proc: ChildProcess;
  started: Map<number, number>;
  waiters: Map<number, (at: number) => void>;
}

async function forkChildren(file: string, count: number, env: Record<string, string>): Promise<Child[]> {
  return Promise.all(
    Array.from({ length: count }, () => {
      const proc = fork(join(here, file), [], {
        execArgv: ["--import", "tsx"],
        env: { ...process.env, CORRAL_LOG_LEVEL: "warn", ...env },
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      const child: Child = { proc, started: new Map(), waiters: new Map() };
      proc.on("message", (m: { type?: string; seq?: number; at?: number }) => {
        if (m.type !== "started" || m.seq === undefined) return;
        const w = child.waiters.get(m.seq);
        if (w) w(m.at!);
        else child.started.set(m.seq, m.at!);
      });
      return new Promise<Child>((resolve, reject) => {
        const onMessage = (m: { type?: string }) => {
          if (m.type === "ready") {
            proc.off("message", onMessage);
            resolve(child);
          }
        };
        proc.on("message", onMessage);
        proc.once("exit", (code) => reject(new Error(`${file} exited with ${code} before it was ready`)));
      });
    }),
  );
}

/** Resolves with the time a ping with `seq` started executing in any of the children. */
function startedAt(children: Child[], seq: number, timeoutMs = 10_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ping ${seq} did not start within ${timeoutMs} ms`)), timeoutMs);
    const done = (at: number) => {
      clearTimeout(timer);
      for (const c of children) c.waiters.delete(seq);
      resolve(at);
    };
    for (const c of children) {
      const at = c.started.get(seq);
      if (at !== undefined) {
        c.started.delete(seq);
        return done(at);
      }
      c.waiters.set(seq, done);
    }
  });
}

async function stopChildren(children: Child[]): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.proc.exitCode !== null) return resolve();
          const t = setTimeout(() => c.proc.kill("SIGKILL"), 10_000);
          c.proc.once("exit", () => {
            clearTimeout(t);
            resolve();
          });
          c.proc.send({ type: "stop" });
        }),
    ),
  );
}

/** The run with the median rate, with every run's rate alongside. */
function medianRun(runs: Row[]): Row {
  const sorted = [...runs].sort((a, b) => (a.tasks_per_s as number) - (b.tasks_per_s as number));
  return { ...sorted[Math.floor((sorted.length - 1) / 2)]!, runs_tasks_per_s: runs.map((r) => r.tasks_per_s as number) };
}

function percentiles(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
  const r = (x: number) => Math.round(x * 100) / 100;
  return { p50_ms: r(at(0.5)), p99_ms: r(at(0.99)), max_ms: r(s[s.length - 1]!), samples: s.length };
}

// ---------------------------------------------------------------- Corral

let cpuPids: Record<string, number[]> = {};

function suitePids(suite: Suite, runners: Child[]): Record<string, number[]> {
  if (suite.broker === suite.jobs) return { services: [suite.broker.child.pid!], runners: runners.map((r) => r.proc.pid!), bench: [process.pid] };
  return {
    broker: [suite.broker.child.pid!],
    jobs: [suite.jobs.child.pid!],
    registry: [suite.registry.child.pid!],
    runners: runners.map((r) => r.proc.pid!),
    bench: [process.pid],
  };
}

/** Extra options for a suite's three service processes (experiments), plus the profiler, its files named by `label`. */
function serviceEnv(label: string): Record<string, string> {
  return {
    NODE_OPTIONS: [
      process.env.BENCH_SERVICE_NODE_OPTIONS ?? "",
      args.profile ? `--import ${join(here, "cpu-profile.mjs")}` : "",
      args.heap ? `--import ${join(here, "heap-probe.mjs")}` : "",
    ].join(" ").trim(),
    ...(args.profile ? { BENCH_PROFILE_DIR: args.profile, BENCH_PROFILE_LABEL: label } : {}),
    ...(args.heap ? { BENCH_HEAP_DIR: args.heap } : {}),
  };
}

/** Concurrency keys of the `keys` shape, and the limit of each. */
const BENCH_KEYS = 100;
const BENCH_KEY_LIMIT = 2;

/**
 * How long the runners waited before the job's first task started: from its submission to the
 * first start of a root task (the fan-out shape: of a subtask), in ms, read from the suite's
 * database. The part of a run spent writing the submission, or the fan-out's result, before any
 * of its tasks can run.
 */
async function firstStartMs(databaseUrl: string, jobId: string, subtasks: boolean): Promise<number | null> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const { rows } = await db.query<{ ms: number | null }>(
      `select extract(epoch from min(t.start_time) - j.submit_time) * 1000 as ms
       from jobs.jobs j join jobs.tasks t on t.job_id = j.id
       where j.id = $1 and (t.parent_id is not null) = $2 group by j.submit_time`,
      [jobId, subtasks],
    );
    return rows[0]?.ms == null ? null : Math.round(Number(rows[0].ms));
  } finally {
    await db.end();
  }
}

/**
 * `pids`: the processes whose CPU the row gives (default: the main suite's); `databaseUrl`: the
 * suite's database, for the row's `first_start_ms`.
 */
async function corralThroughput(
  client: Client,
  shape: "roots" | "fanout" | "keys",
  n: number,
  pids = cpuPids,
  databaseUrl?: string,
): Promise<Row> {
  const noop = { name: "bench/Noop", version: "v1.0" };
  const tasks =
    shape === "roots"
      ? Array.from({ length: n }, () => rawTask(noop))
      : shape === "keys"
        ? Array.from({ length: n }, (_, i) =>
            rawTask(noop, undefined, { concurrency: { key: `customer-${i % BENCH_KEYS}`, limit: BENCH_KEY_LIMIT }, priority: i % 10 }),
          )
        : [rawTask({ name: "bench/FanOut", version: "v1.0" }, { n })];
  const cpu0 = cpuSnapshot(pids);
  const t0 = now();
  const job = await client.jobs().submit(`bench-${shape}-${n}`, tasks);
  const submitMs = now() - t0;
  const state = await waitJob(client, job.id, 20);
  const seconds = (now() - t0) / 1000;
  if (state !== JobState.COMPLETED) throw new Error(`bench job ended ${JobState[state]}`);
  const executed = shape === "fanout" ? n + 1 : n;
  return {
    scenario: shape === "roots" ? "throughput" : shape === "keys" ? "throughput-keys" : "throughput-fanout",
    system: "corral",
    tasks: executed,
    seconds: round(seconds),
    tasks_per_s: Math.round(executed / seconds),
    submit_ms: Math.round(submitMs),
    ...(databaseUrl ? { first_start_ms: await firstStartMs(databaseUrl, job.id, shape === "fanout") } : {}),
    runners: opts.runners,
    slots: opts.slots,
    ...(shape === "keys" ? { keys: BENCH_KEYS, key_limit: BENCH_KEY_LIMIT, priorities: 10 } : {}),
    // CPU seconds per process during the run; postgres and redis-server count every process of
    // those servers on the machine, other users' work included.
    cpu_s: cpuDelta(cpu0, cpuSnapshot(pids)),
  };
}

/**
 * One ping at a time, `opts.latencyWarmup` unmeasured ones first: `submit` sends ping `seq` and
 * returns a wait for its end; a sample is the time from the submission to the start of execute
 * (reported by the child that ran it). `measuring` is called right before the first measured ping.
 */
async function pingLatencies(
  children: Child[],
  count: number,
  submit: (seq: number) => Promise<() => Promise<unknown>>,
  measuring: () => void = () => {},
): Promise<number[]> {
  const samples: number[] = [];
  for (let seq = -opts.latencyWarmup; seq < count; seq++) {
    if (seq === 0) measuring();
    const t0 = now();
    const startP = startedAt(children, seq);
    const ended = await submit(seq);
    const started = await startP;
    if (seq >= 0) samples.push(started - t0);
    await ended();
  }
  return samples;
}

async function corralLatency(client: Client, runners: Child[], count: number): Promise<Row> {
  const ping = { name: "bench/Ping", version: "v1.0" };
  let cpu0 = cpuSnapshot(cpuPids);
  const samples = await pingLatencies(
    runners,
    count,
    async (seq) => {
      const job = await client.jobs().submit("bench-ping", rawTask(ping, { seq }));
      return opts.latencyWait === "watch" ? () => client.jobs().wait(job.id) : () => waitJob(client, job.id, 2);
    },
    () => (cpu0 = cpuSnapshot(cpuPids)),
  );
  // CPU per task includes waiting for the job's end (progress polls every 2 ms, or its watch stream).
  return {
    scenario: "latency",
    system: "corral",
    ...percentiles(samples),
    wait: opts.latencyWait,
    cpu_s: cpuDelta(cpu0, cpuSnapshot(cpuPids)),
  };
}

/**
 * Fills the cluster's stream of an identifier nobody serves, through the broker's own enqueue
 * (its queue store and Lua script, the same layout DispatchService.Enqueue writes) from this
 * process: the RPC would only add decoding and validation to a setup step.
 */
async function fillBacklog(suite: Suite, clusterId: string, depth: number): Promise<number> {
  const redis = new Redis(REDIS_URL, { keyPrefix: suite.redisPrefix });
  const queues = createQueueStore(redis, { recordTtlSec: 3600, channelPrefix: suite.redisPrefix });
  const jobId = randomUUID();
  const batch = 5_000;
  const t0 = now();
  try {
    let inFlight: Promise<unknown>[] = [];
    for (let i = 0; i < depth; i += batch) {
      const tasks: TaskEnvelope[] = [];
      for (let j = i; j < Math.min(depth, i + batch); j++) {
        tasks.push(
          create(TaskEnvelopeSchema, {
            taskId: `backlog-${jobId}-${j}`,
            jobId,
            teamId: suite.teamId,
            clusterId,
            identifier: { name: "bench/Backlog", version: "v1.0" },
            attempt: 1,
            jobName: "backlog",
          }),
        );
      }
      inFlight.push(queues.enqueue(tasks));
      if (inFlight.length >= 4) {
        await Promise.all(inFlight);
        inFlight = [];
      }
    }
    await Promise.all(inFlight);
  } finally {
    redis.disconnect();
  }
  return (now() - t0) / 1000;
}

// ---------------------------------------------------------------- peers

/**
 * A peer's processes for CPU per task: its workers and this process (which submits and waits);
 * cpuSnapshot adds the Postgres and Redis servers. Corral's services idle meanwhile, uncounted.
 */
function peerPids(workers: Child[]): Record<string, number[]> {
  return { workers: workers.map((w) => w.proc.pid!), bench: [process.pid] };
}

async function bullmqRun(suite: Suite, n: number, latencyCount: number): Promise<Row[]> {
  const prefix = `${suite.redisPrefix}bull`;
  const queueName = "bench";
  const url = new URL(REDIS_URL);
  const connection = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
  const queue = new Queue(queueName, { connection, prefix });
  const events = new QueueEvents(queueName, { connection, prefix });
  await events.waitUntilReady();
  const workers = await forkChildren("peer-worker.ts", opts.runners, {
    BENCH_PEER: "bullmq",
    BENCH_QUEUE: queueName,
    BENCH_PREFIX: prefix,
    BENCH_REDIS_URL: REDIS_URL,
    BENCH_SLOTS: String(opts.slots),
  });
  const out: Row[] = [];
  try {
    // Warm-up, as for Corral.
    await bullmqDrain(queue, opts.warmup);
    if (opts.only.has("bullmq")) {
      const runs: Row[] = [];
      for (let i = 0; i < opts.repeat; i++) {
        const cpu0 = cpuSnapshot(peerPids(workers));
        const r = await bullmqDrain(queue, n);
        const cpu_s = cpuDelta(cpu0, cpuSnapshot(peerPids(workers)));
        runs.push({ scenario: "throughput", system: "bullmq", tasks: n, seconds: round(r), tasks_per_s: Math.round(n / r), runners: opts.runners, slots: opts.slots, cpu_s });
      }
      out.push(medianRun(runs));
    }
    if (opts.only.has("latency")) {
      let cpu0 = cpuSnapshot(peerPids(workers));
      const samples = await pingLatencies(
        workers,
        latencyCount,
        async (seq) => {
          const job = await queue.add("ping", { seq });
          return () => job.waitUntilFinished(events, 10_000);
        },
        () => (cpu0 = cpuSnapshot(peerPids(workers))),
      );
      out.push({ scenario: "latency", system: "bullmq", ...percentiles(samples), cpu_s: cpuDelta(cpu0, cpuSnapshot(peerPids(workers))) });
    }
  } finally {
    await stopChildren(workers);
    await queue.obliterate({ force: true }).catch(() => undefined);
    await events.close();
    await queue.close();
  }
  return out;
}

async function bullmqDrain(queue: Queue, n: number): Promise<number> {
  const before = await queue.getCompletedCount();
  const t0 = now();
  for (let i = 0; i < n; i += 5_000) {
    await queue.addBulk(Array.from({ length: Math.min(5_000, n - i) }, () => ({ name: "noop", data: {} })));
  }
  for (;;) {
    if ((await queue.getCompletedCount()) - before >= n) break;
    await sleep(20);
  }
  return (now() - t0) / 1000;
}

async function graphileRun(suite: Suite, n: number, variant: "graphile" | "graphile-batched"): Promise<Row> {
  const schema = variant === "graphile" ? "bench_graphile" : "bench_graphile_batched";
  const utils = await makeWorkerUtils({ connectionString: suite.database.url, schema });
  await utils.migrate();
  const pool = new pg.Pool({ connectionString: suite.database.url, max: 1 });
  const workers = await forkChildren("peer-worker.ts", opts.runners, {
    BENCH_PEER: variant,
    BENCH_DATABASE_URL: suite.database.url,
    BENCH_SCHEMA: schema,
    BENCH_SLOTS: String(opts.slots),
  });
  const drain = async (count: number) => {
    const t0 = now();
    for (let i = 0; i < count; i += 5_000) {
      await utils.addJobs(Array.from({ length: Math.min(5_000, count - i) }, () => ({ identifier: "noop", payload: {} })));
    }
    for (;;) {
      const { rows } = await pool.query<{ n: number }>(`select count(*)::int as n from "${schema}"._private_jobs`);
      if (rows[0]!.n === 0) break;
      await sleep(20);
    }
    return (now() - t0) / 1000;
  };
  try {
    await drain(opts.warmup);
    const cpu0 = cpuSnapshot(peerPids(workers));
    const seconds = await drain(n);
    const cpu_s = cpuDelta(cpu0, cpuSnapshot(peerPids(workers)));
    return {
      scenario: "throughput",
      system: variant === "graphile" ? "graphile-worker" : "graphile-worker (localQueue 500, batched completes)",
      tasks: n,
      seconds: round(seconds),
      tasks_per_s: Math.round(n / seconds),
      runners: opts.runners,
      slots: opts.slots,
      cpu_s,
    };
  } finally {
    await stopChildren(workers);
    await pool.end();
    await utils.release();
  }
}

// ---------------------------------------------------------------- idle runners

/** CPU seconds used so far by each named process (and by every Postgres and Redis server process). */
function cpuSnapshot(pids: Record<string, number[]>): Record<string, number> {
  const out: Record<string, number> = {};
  const ticks = (pid: number) => {
    try {
      return procStats(pid).cpuTicks;
    } catch {
      return 0; // exited
    }
  };
  for (const [name, list] of Object.entries(pids)) out[name] = list.reduce((n, pid) => n + ticks(pid), 0) / 100;
  for (const server of ["postgres", "redis-server"]) {
    let total = 0;
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (!readFileSync(`/proc/${entry}/comm`, "utf8").trim().startsWith(server)) continue;
        // A backend that exits during a run (a pool closing an idle connection) takes its ticks
        // out of the live sum; its parent (the postmaster) gets them as exited children's time.
        const st = procStats(Number(entry));
        total += st.cpuTicks + st.exitedChildTicks;
      } catch {
        // gone
      }
    }
    out[server] = total / 100;
  }
  return out;
}

function cpuDelta(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(b).map((k) => [k, round(b[k]! - (a[k] ?? 0), 2)]));
}

/** Waits until the process uses under 15% of a core for two half-second windows in a row (at most 2 min). */
async function settle(pid: number): Promise<number> {
  const t0 = now();
  let quiet = 0;
  while (quiet < 2 && now() - t0 < 120_000) {
    const { cpu_percent } = await brokerSample(pid, 500);
    quiet = cpu_percent < 15 ? quiet + 1 : 0;
  }
  return (now() - t0) / 1000;
}

async function brokerSample(pid: number, ms: number) {
  const ticksPerSecond = 100; // USER_HZ on Linux
  const a = procStats(pid);
  await sleep(ms);
  const b = procStats(pid);
  return { rss_mb: round(b.rssMb, 1), cpu_percent: round(((b.cpuTicks - a.cpuTicks) / ticksPerSecond / (ms / 1000)) * 100, 1) };
}

/**
 * With `--heap`: the broker's heap and RSS after a full GC (MB), asked of heap-probe.mjs with
 * SIGUSR2; taken after the RSS sample, so the collection does not shrink the RSS of that level.
 */
async function brokerHeap(pid: number): Promise<{ heap_mb?: number; rss_after_gc_mb?: number }> {
  if (!args.heap) return {};
  const file = join(args.heap, `${pid}.json`);
  const read = () => (existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as { seq: number; heapUsed: number; rss: number }) : undefined);
  const before = read()?.seq ?? 0;
  process.kill(pid, "SIGUSR2");
  for (let i = 0; i < 600; i++) {
    await sleep(100);
    const r = read();
    if (r && r.seq > before) return { heap_mb: round(r.heapUsed / 2 ** 20, 1), rss_after_gc_mb: round(r.rss / 2 ** 20, 1) };
  }
  throw new Error("the broker's heap probe did not answer in 60 s");
}

/**
 * The broker's RSS and CPU over `ms`, and the CPU of every server process in that time (the
 * registry, job-service, Postgres and Redis take the presence reports of idle runners), in percent of a core.
 */
async function idleSample(suite: Suite, ms: number) {
  // In one process (--one-process) the broker's figures are the three services'.
  const pids: Record<string, number[]> = suite.broker === suite.jobs ? {} : { registry: [suite.registry.child.pid!], jobs: [suite.jobs.child.pid!] };
  const cpu0 = cpuSnapshot(pids);
  const broker = await brokerSample(suite.broker.child.pid!, ms);
  const cpu = cpuDelta(cpu0, cpuSnapshot(pids));
  const percent = (seconds: number) => round((seconds / (ms / 1000)) * 100, 2);
  const others = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [`${k.replace("-server", "")}_cpu_percent`, percent(v)]));
  const all = round(broker.cpu_percent + Object.values(cpu).reduce((n, v) => n + percent(v), 0), 2);
  return { ...broker, ...others, all_cpu_percent: all };
}

async function idleRunners(suite: Suite, counts: number[]): Promise<Row[]> {
  const pid = suite.broker.child.pid!;
  const out: Row[] = [];
  const [holder] = await forkChildren("idle-streams.ts", 1, { BENCH_BROKER_URL: suite.broker.url, BENCH_API_KEY: suite.apiKey });
  try {
    const base = { ...(await idleSample(suite, opts.idleSampleMs)), ...(await brokerHeap(pid)) };
    out.push({ scenario: "idle-runners", system: "corral", streams: 0, ...base });
    let previous = { ...base, streams: 0 };
    for (const total of [...counts].sort((a, b) => a - b)) {
      const t0 = now();
      await new Promise<void>((resolve, reject) => {
        const onMessage = (m: { type?: string; total?: number }) => {
          if (m.type === "opened") {
            holder!.proc.off("message", onMessage);
            if (m.total === total) resolve();
            else reject(new Error(`opened ${m.total} streams, wanted ${total}`));
          }
        };
        holder!.proc.on("message", onMessage);
        holder!.proc.send({ type: "open", total });
      });
      const openSeconds = (now() - t0) / 1000;
      await sleep(opts.idleSettleMs);
      const sample = { ...(await idleSample(suite, opts.idleSampleMs)), ...(await brokerHeap(pid)) };
      const perAdded = (now: number, before: number) => round(((now - before) * 1024) / (total - previous.streams), 1);
      out.push({
        scenario: "idle-runners",
        system: "corral",
        streams: total,
        ...sample,
        // Against the previous level: the broker's heap may still shrink after the earlier scenarios.
        rss_per_added_stream_kb: perAdded(sample.rss_mb, previous.rss_mb),
        ...(sample.heap_mb !== undefined && previous.heap_mb !== undefined ? { heap_per_added_stream_kb: perAdded(sample.heap_mb, previous.heap_mb) } : {}),
        ...(sample.rss_after_gc_mb !== undefined && previous.rss_after_gc_mb !== undefined
          ? { rss_after_gc_per_added_stream_kb: perAdded(sample.rss_after_gc_mb, previous.rss_after_gc_mb) }
          : {}),
        open_seconds: round(openSeconds),
      });
      previous = { ...sample, streams: total };
    }
  } finally {
    await stopChildren([holder!]);
  }
  return out;
}

// ---------------------------------------------------------------- tracing cost

/**
 * Throughput without tracing and with every service exporting over OTLP/HTTP (protobuf) to a real
 * receiver: two suites, each with its own runners, their runs alternating so load on a shared
 * machine falls on both. The row's cost is 1 - traced / untraced, per shape, from median runs.
 */
async function tracingCost(): Promise<Row[]> {
  const receiver = await startOtlpReceiver({ keep: false });
  const quota = { CORRAL_QUOTA_SUBMISSIONS_PER_SECOND: "100000" };
  const sides: { name: "off" | "on"; suite: Suite; client: Client; runners: Child[]; pids: Record<string, number[]> }[] = [];
  try {
    for (const name of ["off", "on"] as const) {
      const env = { ...serviceEnv(`tracing-${name}`), ...quota, ...(name === "on" ? { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint } : {}) };
      const suite = await startSuite({ label: `bench-tracing-${name}`, env });
      const side = { name, suite, client: new Client({ url: suite.jobs.url, apiKey: suite.apiKey }), runners: [] as Child[], pids: {} as Record<string, number[]> };
      sides.push(side);
      side.runners = await forkChildren("corral-runner.ts", opts.runners, {
        BENCH_BROKER_URL: suite.broker.url,
        BENCH_API_KEY: suite.apiKey,
        BENCH_SLOTS: String(opts.slots),
      });
      side.pids = suitePids(suite, side.runners);
      await corralThroughput(side.client, "roots", opts.warmup);
    }
    const out: Row[] = [];
    for (const shape of ["roots", "fanout"] as const) {
      const runs: Record<"off" | "on", Row[]> = { off: [], on: [] };
      for (let i = 0; i < opts.repeat; i++) {
        for (const side of sides) runs[side.name].push(await corralThroughput(side.client, shape, opts.tasks, side.pids));
      }
      const off = medianRun(runs.off);
      const on = medianRun(runs.on);
      out.push({
        scenario: shape === "roots" ? "tracing" : "tracing-fanout",
        system: "corral",
        tasks: off.tasks,
        off_tasks_per_s: off.tasks_per_s,
        on_tasks_per_s: on.tasks_per_s,
        cost_percent: round(100 * (1 - (on.tasks_per_s as number) / (off.tasks_per_s as number)), 1),
        runs_off: off.runs_tasks_per_s,
        runs_on: on.runs_tasks_per_s,
        cpu_s_off: off.cpu_s,
        cpu_s_on: on.cpu_s,
        runners: opts.runners,
        slots: opts.slots,
      });
    }
    // Spans still in the exporters' batches arrive within their schedule delay (5 s by default).
    await sleep(6_000);
    for (const r of out) r.spans_received = receiver.count;
    return out;
  } finally {
    for (const side of sides) {
      await stopChildren(side.runners);
      await side.suite.stop();
      await clearPrefix(side.suite.redisPrefix);
    }
    await receiver.close();
  }
}

// ---------------------------------------------------------------- one big job

/** VmHWM (the peak resident set since the process started) in MB. */
function vmHwmMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return round(Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024, 1);
}

/** Samples each process's VmRSS every `everyMs` until `stop()`, which returns each one's maximum (MB). */
function sampleRssPeaks(pids: Record<string, number>, everyMs = 100): { stop(): Record<string, number> } {
  const peaks: Record<string, number> = {};
  const sample = () => {
    for (const [name, pid] of Object.entries(pids)) {
      try {
        peaks[name] = Math.max(peaks[name] ?? 0, procStats(pid).rssMb);
      } catch {
        // exited
      }
    }
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return Object.fromEntries(Object.entries(peaks).map(([name, mb]) => [name, round(mb, 1)]));
    },
  };
}

/** Bytes of the whole database and of each of job-service's tables (schema `jobs`, indexes and TOAST included). */
async function postgresBytes(url: string): Promise<{ database: number; tables: Record<string, number> }> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const database = await db.query<{ bytes: string }>("select pg_database_size(current_database())::text as bytes");
    const tables = await db.query<{ name: string; bytes: string }>(
      `select c.relname as name, pg_total_relation_size(c.oid)::text as bytes from pg_class c
         join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'jobs' and c.relkind in ('r', 'm')`,
    );
    return { database: Number(database.rows[0]!.bytes), tables: Object.fromEntries(tables.rows.map((r) => [r.name, Number(r.bytes)])) };
  } finally {
    await db.end();
  }
}

/** Growth per task: of job-service's tables together and of each that changed, largest first. */
function bytesPerTask(before: Awaited<ReturnType<typeof postgresBytes>>, after: typeof before, tasks: number) {
  const sum = (tables: Record<string, number>) => Object.values(tables).reduce((a, b) => a + b, 0);
  const grown = Object.entries(after.tables)
    .map(([name, bytes]) => [name, Math.round((bytes - (before.tables[name] ?? 0)) / tasks)] as const)
    .filter(([, per]) => per !== 0)
    .sort((x, y) => y[1] - x[1]);
  return {
    pg_jobs_bytes_per_task: Math.round((sum(after.tables) - sum(before.tables)) / tasks),
    pg_database_bytes_per_task: Math.round((after.database - before.database) / tasks),
    pg_jobs_tables_bytes_per_task: Object.fromEntries(grown),
  };
}

/**
 * One job of `opts.bigTasks` no-op tasks: a root (BigFanOut) submits one FanOut per 10,000 (the most
 * one result may carry), each of which submits its share. `opts.bigRunners` runner processes share
 * the concurrency the other scenarios give 2 runners (runners x slots). Its own suite, so
 * job-service's VmHWM is this job's and the earlier scenarios' rows do not weigh on Postgres.
 */
async function bigJob(): Promise<Row> {
  const slots = Math.max(1, Math.round((opts.runners * opts.slots) / opts.bigRunners));
  const suite = await startSuite({ label: "bench-big", env: { ...serviceEnv("big-job"), CORRAL_QUOTA_SUBMISSIONS_PER_SECOND: "100000" } });
  const client = new Client({ url: suite.jobs.url, apiKey: suite.apiKey });
  let runners: Child[] = [];
  try {
    runners = await forkChildren("corral-runner.ts", opts.bigRunners, {
      BENCH_BROKER_URL: suite.broker.url,
      BENCH_API_KEY: suite.apiKey,
      BENCH_SLOTS: String(slots),
    });
    const pids = suitePids(suite, runners);
    const warm = await client.jobs().submit("bench-big-warmup", rawTask({ name: "bench/FanOut", version: "v1.0" }, { n: opts.warmup }));
    await waitJob(client, warm.id, 20);
    return { ...(await measureBigJob(suite, client, pids)), runners: opts.bigRunners, slots };
  } finally {
    await stopChildren(runners);
    await suite.stop();
    await clearPrefix(suite.redisPrefix);
  }
}

/** Submits the big job and measures it: rate, CPU, Postgres growth, job-service's memory. */
async function measureBigJob(suite: Suite, client: Client, pids: Record<string, number[]>): Promise<Row> {
  const n = opts.bigTasks;
  const chunk = MAX_SUBTASKS_PER_RESULT;
  const expected = 1 + Math.ceil(n / chunk) + n;
  const jobsPid = suite.jobs.child.pid!;
  const size0 = await postgresBytes(suite.database.url);
  const hwm0 = vmHwmMb(jobsPid);
  const rss0 = procStats(jobsPid).rssMb;
  const peaks = sampleRssPeaks({ jobs: jobsPid, broker: suite.broker.child.pid! });
  const cpu0 = cpuSnapshot(pids);
  const t0 = now();
  const job = await client.jobs().submit(`bench-big-${n}`, rawTask({ name: "bench/BigFanOut", version: "v1.0" }, { n, chunk }));
  const submitMs = now() - t0;
  const state = await waitJob(client, job.id, 100, 1_800_000);
  const seconds = (now() - t0) / 1000;
  const cpu = cpuDelta(cpu0, cpuSnapshot(pids));
  const rss = peaks.stop();
  const { tasksByState: counts } = await client.jobs().progress(job.id);
  if (state !== JobState.COMPLETED || counts?.computed !== expected || counts.total !== expected) {
    throw new Error(`big job ${job.id} ended ${JobState[state]} with ${JSON.stringify(counts)}, expected ${expected} computed tasks`);
  }
  const size1 = await postgresBytes(suite.database.url);
  return {
    scenario: "big-job",
    system: "corral",
    tasks: expected,
    seconds: round(seconds),
    tasks_per_s: Math.round(expected / seconds),
    submit_ms: Math.round(submitMs),
    chunk,
    ...bytesPerTask(size0, size1, expected),
    jobs_rss_before_mb: round(rss0, 1),
    jobs_rss_peak_mb: rss.jobs,
    jobs_vmhwm_before_mb: hwm0,
    jobs_vmhwm_mb: vmHwmMb(jobsPid),
    broker_rss_peak_mb: rss.broker,
    broker_vmhwm_mb: vmHwmMb(suite.broker.child.pid!),
    cpu_s: cpu,
  };
}

// ---------------------------------------------------------------- replicas

interface ReplicaSide {
  name: string;
  suite: ReplicatedSuite;
  clients: Client[];
  runners: Child[];
  pids: Record<string, number[]>;
}

/** Jobs each replicas run splits its tasks into: one per job-service of the bigger side. */
const REPLICA_JOBS = 2;

/**
 * `count` brokers and job-services (one registry) of one cluster, wired replica to replica (no
 * balancer hop); runner i connects to broker i mod count. Pushed on `sides` before its runners
 * start, so the caller stops it when they fail to.
 */
async function startReplicaSide(count: number, sides: ReplicaSide[]): Promise<ReplicaSide> {
  const suite = await startReplicatedSuite({
    label: `bench-replicas-${count}`,
    counts: { registry: 1, jobs: count, broker: count },
    wiring: "paired",
    env: { ...serviceEnv(`replicas-${count}`), CORRAL_QUOTA_SUBMISSIONS_PER_SECOND: "100000" },
  });
  const side: ReplicaSide = { name: `${count}+${count}`, suite, clients: suite.replicas.jobs.map((r) => new Client({ url: r.url, apiKey: suite.apiKey })), runners: [], pids: {} };
  sides.push(side);
  for (let i = 0; i < opts.runners; i++) {
    const broker = suite.replicas.broker[i % count]!;
    side.runners.push(...(await forkChildren("corral-runner.ts", 1, { BENCH_BROKER_URL: broker.url, BENCH_API_KEY: suite.apiKey, BENCH_SLOTS: String(opts.slots) })));
  }
  // Per replica (`broker-1`, `jobs-2`, ...), so the rows show how the work spread.
  const replicas = [...suite.replicas.broker, ...suite.replicas.jobs, ...suite.replicas.registry];
  side.pids = {
    ...Object.fromEntries(replicas.map((r) => [r.name, [r.process!.child.pid!]])),
    runners: side.runners.map((r) => r.proc.pid!),
    bench: [process.pid],
  };
  return side;
}

/** `n` root tasks as REPLICA_JOBS jobs submitted at once, job j through job-service j mod count. */
async function replicaRun(side: ReplicaSide, n: number): Promise<Row> {
  const noop = { name: "bench/Noop", version: "v1.0" };
  const cpu0 = cpuSnapshot(side.pids);
  const t0 = now();
  await Promise.all(
    Array.from({ length: REPLICA_JOBS }, async (_, j) => {
      const client = side.clients[j % side.clients.length]!;
      const size = Math.floor(n / REPLICA_JOBS) + (j < n % REPLICA_JOBS ? 1 : 0);
      const job = await client.jobs().submit(`bench-replicas-${j}`, Array.from({ length: size }, () => rawTask(noop)));
      const state = await waitJob(client, job.id, 20);
      if (state !== JobState.COMPLETED) throw new Error(`replicas job ${job.id} (${side.name}) ended ${JobState[state]}`);
    }),
  );
  const seconds = (now() - t0) / 1000;
  const cpu = cpuDelta(cpu0, cpuSnapshot(side.pids));
  const total = Object.values(cpu).reduce((a, b) => a + b, 0);
  return { scenario: "replicas", system: side.name, tasks: n, seconds: round(seconds), tasks_per_s: Math.round(n / seconds), cpu_s: cpu, cpu_us_per_task: Math.round((total * 1e6) / n) };
}

/**
 * The roots workload on 1 broker + 1 job-service and on 2 + 2, two deployments side by side whose
 * runs alternate (1+1, 2+2, 1+1, ...), so load on a shared machine falls on both. CPU per task is
 * summed over every process (Postgres and Redis servers included): what a second replica costs.
 */
async function replicaCost(): Promise<Row> {
  const sides: ReplicaSide[] = [];
  try {
    for (const count of [1, 2]) {
      const side = await startReplicaSide(count, sides);
      await replicaRun(side, opts.warmup);
    }
    const runs: Row[][] = sides.map(() => []);
    for (let i = 0; i < opts.repeat; i++) for (const [s, side] of sides.entries()) runs[s]!.push(await replicaRun(side, opts.tasks));
    const [one, two] = runs.map(medianRun) as [Row, Row];
    const meanCpu = (list: Row[]) => Math.round(list.reduce((a, r) => a + (r.cpu_us_per_task as number), 0) / list.length);
    return {
      scenario: "replicas",
      system: "corral",
      tasks: opts.tasks,
      jobs: REPLICA_JOBS,
      runners: opts.runners,
      slots: opts.slots,
      one_tasks_per_s: one.tasks_per_s,
      two_tasks_per_s: two.tasks_per_s,
      ratio: round((two.tasks_per_s as number) / (one.tasks_per_s as number)),
      runs_one: one.runs_tasks_per_s,
      runs_two: two.runs_tasks_per_s,
      // Mean over each side's runs; the by-process split is the median run's.
      one_cpu_us_per_task: meanCpu(runs[0]!),
      two_cpu_us_per_task: meanCpu(runs[1]!),
      one_cpu_s: one.cpu_s,
      two_cpu_s: two.cpu_s,
    };
  } finally {
    for (const side of sides) {
      await stopChildren(side.runners);
      await side.suite.stop();
      await clearPrefix(side.suite.redisPrefix);
    }
  }
}

// ---------------------------------------------------------------- main

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

async function clearPrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 10_000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

/** CPU per task of each process (microseconds): where a faster Corral has to save. */
function cpuPerTask(r: Row, tasks: number): string {
  const cpu = r.cpu_s as Record<string, number> | undefined;
  if (!cpu) return "";
  const used = Object.entries(cpu).filter(([, s]) => s > 0);
  const per = used.map(([name, s]) => `${name} ${Math.round((s * 1e6) / tasks)}`);
  const summed = used.reduce((n, [, s]) => n + s, 0);
  return `; CPU us/task: ${per.join(", ")} (summed ${Math.round((summed * 1e6) / tasks)})`;
}

function table(): string {
  const lines: string[] = [];
  const get = (scenario: string, system: string) => rows.find((r) => r.scenario === scenario && r.system === system);
  const corral = get("throughput", "corral");
  lines.push("| scenario | system | result |", "|---|---|---|");
  for (const r of rows) {
    let result = "";
    if (r.scenario.startsWith("throughput") || r.scenario.startsWith("queue-depth")) {
      result = `${r.tasks_per_s} tasks/s (${r.tasks} tasks, ${r.seconds} s)`;
      const runs = r.runs_tasks_per_s as number[] | undefined;
      if (r.scenario.startsWith("throughput") && runs && runs.length > 1) result += `, median of ${runs.join(", ")}`;
      if (typeof r.first_start_ms === "number") result += `; first start after ${r.first_start_ms} ms`;
      if (r.scenario.startsWith("throughput")) result += cpuPerTask(r, r.tasks as number);
      if (r.scenario === "throughput" && r.system !== "corral" && corral) {
        result += `; Corral/peer ${round((corral.tasks_per_s as number) / (r.tasks_per_s as number))}`;
      }
      if (r.scenario === "throughput-keys" && corral) {
        result += `; ${r.keys} keys (limit ${r.key_limit} each) and ${r.priorities} priorities: ${round((r.tasks_per_s as number) / (corral.tasks_per_s as number))}× the default path`;
      }
      if (r.scenario === "queue-depth") result += `; backlog ${r.backlog}`;
      if (r.scenario === "queue-depth" && r.backlog) result += `: ${r.ratio_to_empty}× the empty rate, ${r.cpu_ratio_to_empty}× its CPU per task`;
    } else if (r.scenario === "latency") {
      result = `p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms, max ${r.max_ms} ms (${r.samples} tasks)` + cpuPerTask(r, r.samples as number);
    } else if (r.scenario.startsWith("tracing")) {
      result = `${r.off_tasks_per_s} tasks/s without tracing, ${r.on_tasks_per_s} exporting over OTLP: cost ${r.cost_percent}% (${r.tasks} tasks, ${r.spans_received} spans received)`;
      result += cpuPerTask({ ...r, cpu_s: r.cpu_s_off }, r.tasks as number).replace("CPU", "off: CPU");
      result += cpuPerTask({ ...r, cpu_s: r.cpu_s_on }, r.tasks as number).replace("CPU", "on: CPU");
    } else if (r.scenario === "big-job") {
      result =
        `${r.tasks_per_s} tasks/s (${r.tasks} tasks in one job, ${r.seconds} s, ${r.runners} runners x ${r.slots} slots); ` +
        `Postgres ${r.pg_jobs_bytes_per_task} bytes/task in job-service's tables (${r.pg_database_bytes_per_task} database); ` +
        `job-service RSS peak ${r.jobs_rss_peak_mb} MB (from ${r.jobs_rss_before_mb}, VmHWM ${r.jobs_vmhwm_mb})` +
        cpuPerTask(r, r.tasks as number);
    } else if (r.scenario === "replicas") {
      result =
        `1+1 ${r.one_tasks_per_s} tasks/s, 2+2 ${r.two_tasks_per_s} tasks/s: ${r.ratio}x (${r.tasks} tasks as ${r.jobs} jobs; runs ${(r.runs_one as number[]).join(", ")} / ${(r.runs_two as number[]).join(", ")}); ` +
        `CPU us/task summed over processes: 1+1 ${r.one_cpu_us_per_task}, 2+2 ${r.two_cpu_us_per_task}`;
    } else if (r.scenario === "idle-runners") {
      result = `${r.streams} streams: RSS ${r.rss_mb} MB, CPU ${r.cpu_percent}% (all processes ${r.all_cpu_percent}%)` + (r.heap_mb === undefined ? "" : `, after a full GC heap ${r.heap_mb} MB and RSS ${r.rss_after_gc_mb} MB`);
    }
    lines.push(`| ${r.scenario} | ${r.system} | ${result} |`);
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const began = now();
  if (args.profile) mkdirSync(args.profile, { recursive: true });
  note(`options ${JSON.stringify({ ...opts, only: [...opts.only] })}`);
  if (args.heap) mkdirSync(args.heap, { recursive: true });
  const suite = await startSuite({
    label: "bench",
    env: {
      // The latency scenario submits one job per ping, several hundred a second on a fast machine:
      // above the default per-team rate (100 a second, RESOURCE_EXHAUSTED beyond it).
      CORRAL_QUOTA_SUBMISSIONS_PER_SECOND: "100000",
      // The idle scenario holds up to 5,000 Work streams of one team on one broker.
      CORRAL_MAX_SESSIONS_PER_TEAM: "100000",
      ...serviceEnv("main"),
    },
    oneProcess: args["one-process"],
  });
  const client = new Client({ url: suite.jobs.url, apiKey: suite.apiKey });
  let runners: Child[] = [];
  try {
    const wantsCorral = ["corral", "keys", "latency", "depth"].some((s) => opts.only.has(s));
    if (wantsCorral) {
      runners = await forkChildren("corral-runner.ts", opts.runners, {
        BENCH_BROKER_URL: suite.broker.url,
        BENCH_API_KEY: suite.apiKey,
        BENCH_SLOTS: String(opts.slots),
      });
      cpuPids = suitePids(suite, runners);
      // Warm-up: JIT, connections, caches (V8 keeps optimizing well past the first hundred tasks).
      await corralThroughput(client, "roots", opts.warmup);
    }
    if (opts.only.has("corral")) {
      note("corral throughput");
      // The shapes alternate, so a slow stretch of the machine does not land on one shape only.
      const roots: Row[] = [];
      const fanout: Row[] = [];
      for (let i = 0; i < opts.repeat; i++) {
        roots.push(await corralThroughput(client, "roots", opts.tasks, cpuPids, suite.database.url));
        fanout.push(await corralThroughput(client, "fanout", opts.tasks, cpuPids, suite.database.url));
      }
      emit(medianRun(roots));
      emit(medianRun(fanout));
    }
    if (opts.only.has("keys")) {
      note("corral throughput with 100 concurrency keys and priorities");
      const keyed: Row[] = [];
      for (let i = 0; i < opts.repeat; i++) keyed.push(await corralThroughput(client, "keys", opts.tasks, cpuPids, suite.database.url));
      emit(medianRun(keyed));
    }
    if (opts.only.has("bullmq") || opts.only.has("latency")) {
      note("bullmq");
      for (const r of await bullmqRun(suite, opts.tasks, opts.latencyTasks)) emit(r);
    }
    if (opts.only.has("latency")) {
      note("corral latency");
      emit(await corralLatency(client, runners, opts.latencyTasks));
    }
    if (opts.only.has("graphile")) {
      note("graphile-worker");
      emit(await graphileRun(suite, opts.tasks, "graphile"));
      emit(await graphileRun(suite, opts.tasks, "graphile-batched"));
    }
    if (opts.only.has("depth")) {
      // Each side is drained twice and the faster run kept: one 10,000-task run takes a few
      // seconds, short enough for other load on the machine to swing it. CPU seconds per task
      // (services, runners and Redis) are the steadier comparison.
      const drainBest = async () => {
        const runs = [await corralThroughput(client, "roots", opts.drain), await corralThroughput(client, "roots", opts.drain)];
        const best = runs.reduce((a, b) => ((a.tasks_per_s as number) >= (b.tasks_per_s as number) ? a : b));
        const cpu = (r: Row) => {
          const c = r.cpu_s as Record<string, number>;
          return ((c.services ?? c.broker! + c.jobs!) + c.runners! + c["redis-server"]!) / (r.tasks as number);
        };
        return { best, runs: runs.map((r) => r.tasks_per_s as number), cpuMsPerTask: round((1000 * (cpu(runs[0]!) + cpu(runs[1]!))) / 2, 3) };
      };
      note("queue depth: empty");
      const empty = await drainBest();
      emit({ ...empty.best, scenario: "queue-depth", backlog: 0, runs_tasks_per_s: empty.runs, cpu_ms_per_task: empty.cpuMsPerTask });
      const cluster = await new Client({ url: suite.registry.url, apiKey: suite.apiKey }).clusters().find();
      note(`queue depth: filling ${opts.depth} tasks`);
      const fillSeconds = await fillBacklog(suite, cluster.id, opts.depth);
      // Every enqueued entry also published a wake-up that the broker reads off its Pub/Sub
      // connection; measure the drain once that burst is digested, not while it still is.
      const settleSeconds = await settle(suite.broker.child.pid!);
      const deep = await drainBest();
      emit({
        ...deep.best,
        scenario: "queue-depth",
        backlog: opts.depth,
        runs_tasks_per_s: deep.runs,
        cpu_ms_per_task: deep.cpuMsPerTask,
        fill_seconds: round(fillSeconds),
        settle_seconds: round(settleSeconds),
        ratio_to_empty: round((deep.best.tasks_per_s as number) / (empty.best.tasks_per_s as number)),
        cpu_ratio_to_empty: round(deep.cpuMsPerTask / empty.cpuMsPerTask),
      });
    }
    await stopChildren(runners);
    runners = [];
    if (opts.only.has("tracing")) {
      note("tracing cost");
      for (const r of await tracingCost()) emit(r);
    }
    if (opts.only.has("big-job")) {
      note(`one job of ${opts.bigTasks} tasks on ${opts.bigRunners} runners`);
      emit(await bigJob());
    }
    if (opts.only.has("replicas")) {
      note("2 brokers + 2 job-services against 1 + 1");
      emit(await replicaCost());
    }
    if (opts.only.has("idle")) {
      note("idle runners");
      for (const r of await idleRunners(suite, opts.idle)) emit(r);
    }
  } finally {
    await stopChildren(runners);
    await suite.stop();
    await clearPrefix(suite.redisPrefix);
  }
  process.stdout.write("\n" + table() + "\n");
  note(`done in ${round((now() - began) / 1000, 1)} s`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
