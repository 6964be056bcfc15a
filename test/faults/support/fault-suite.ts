// A suite for fault tests: the services as separate processes (one or more broker replicas behind
// a TCP proxy), short leases, a team and cluster, runner processes, a Fan/Work workload and the
// end-of-run ledger check.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createDatabase } from "@corral/server-kit";
import { createTestDatabase, dropTestRedisPrefix, testRedisPrefix, TEST_REDIS_URL, type TestDatabase } from "@corral/server-kit/testing";
import { createRegistry, REGISTRY_SCHEMA, type RegistryDatabase } from "@corral/cluster-registry";
import { JobState, TaskState } from "@corral/proto";
import { Client, createTransport, rawTask } from "@corral/sdk";
import { freePort, randomServiceKey, repoRoot, spawnService, type ServiceProcess } from "../../support/processes.js";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.js";

export interface RunnerProcess {
  child: ChildProcess;
  output(): string;
  /** Tasks this process started (`EXEC` lines). */
  executions(): number;
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

export interface FaultSuite {
  env: Record<string, string>;
  registry: ServiceProcess;
  jobs: ServiceProcess;
  brokers: ServiceProcess[];
  /** Where runners and job-service reach the brokers. */
  proxy: TcpProxy;
  apiKey: string;
  teamId: string;
  clusterSlug: string;
  jobsClient: Client;
  registryClient: Client;
  runners: RunnerProcess[];
  restart(which: "registry" | "jobs", kill9?: boolean): Promise<void>;
  /** kill -9 of broker `i` (it stays dead until startBroker). */
  killBroker(i: number): Promise<void>;
  /** Starts broker `i` again (a new process on its port). */
  startBroker(i: number): Promise<void>;
  startRunner(concurrency?: number): Promise<RunnerProcess>;
  /** Submits `jobs` jobs of one Fan task that spawns `perJob` Work tasks of `ms` each. */
  submitWorkload(jobs: number, perJob: number, ms: number): Promise<string[]>;
  /** Resolves once every job is COMPLETED or FAILED or CANCELED; throws after `timeoutMs`. */
  waitJobs(ids: string[], timeoutMs: number): Promise<void>;
  check(ids: string[], perJob: number): Promise<LedgerCheck>;
  /** Everything the service processes printed. */
  logs(): string;
  stop(): Promise<void>;
}

export interface LedgerCheck {
  jobs: number;
  completedJobs: number;
  tasksExpected: number;
  /** Tasks the ledger holds. */
  tasksRecorded: number;
  tasksComputed: number;
  /** Expected tasks that are not COMPUTED. */
  lost: number;
  /** Tasks or progress units recorded beyond the expected: a result applied twice. */
  duplicates: number;
  /** Attempts beyond the first (re-deliveries after a fault). */
  extraAttempts: number;
}

export interface FaultSuiteOptions {
  label: string;
  brokers?: number;
  env?: Record<string, string>;
  /** An own Postgres (`postgres://.../postgres`) instead of a fresh database on the machine's. */
  databaseUrl?: string;
  redisUrl?: string;
}

const workloadRunner = join(repoRoot, "test/faults/support/workload-runner.ts");

export async function startFaultSuite(options: FaultSuiteOptions): Promise<FaultSuite> {
  let database: TestDatabase | undefined;
  const databaseUrl = options.databaseUrl ?? (database = await createTestDatabase(options.label)).url;
  const [registryPort, jobsPort] = [await freePort(), await freePort()];
  const brokerPorts: number[] = [];
  for (let i = 0; i < (options.brokers ?? 1); i++) brokerPorts.push(await freePort());
  const alive = new Set(brokerPorts);
  const proxy = await startTcpProxy(() => brokerPorts.filter((p) => alive.has(p)));
  const env: Record<string, string> = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: options.redisUrl ?? TEST_REDIS_URL,
    CORRAL_REDIS_PREFIX: testRedisPrefix(options.label),
    CORRAL_SERVICE_KEY: randomServiceKey(),
    CORRAL_REGISTRY_URL: `http://127.0.0.1:${registryPort}`,
    CORRAL_JOBS_URL: `http://127.0.0.1:${jobsPort}`,
    CORRAL_BROKER_URL: proxy.url,
    CORRAL_SHUTDOWN_GRACE: "2s",
    CORRAL_LEASE_DURATION: "3s",
    CORRAL_REAP_INTERVAL: "250ms",
    CORRAL_KEY_CACHE: "2s",
    LOG_LEVEL: "info",
    ...options.env,
  };
  const procs: ServiceProcess[] = [];
  const dead: string[] = [];
  const runners: RunnerProcess[] = [];
  const spawnRegistry = () =>
    spawnService({ name: "cluster-registry", entry: "services/cluster-registry/src/main.ts", env, port: registryPort });
  const spawnJobs = () => spawnService({ name: "job-service", entry: "services/job-service/src/main.ts", env, port: jobsPort });
  let registry = await spawnRegistry();
  procs.push(registry);
  const spawnBroker = (i: number) =>
    spawnService({
      name: `task-broker-${i}`,
      entry: "services/task-broker/src/main.ts",
      env: { ...env, CORRAL_BROKER_ID: `b${i}` },
      port: brokerPorts[i]!,
    });
  const brokerProcs = await Promise.all(brokerPorts.map((_port, i) => spawnBroker(i)));
  let jobs = await spawnJobs();
  procs.push(...brokerProcs, jobs);

  const db = createDatabase<RegistryDatabase>({ url: databaseUrl, schema: REGISTRY_SCHEMA, max: 2 });
  const team = await createRegistry({ db }).bootstrap(`${options.label}-team`);
  await db.destroy();
  const client = (url: string) =>
    new Client({ url, apiKey: team.key, transport: createTransport({ baseUrl: url, apiKey: team.key, protocol: "connect" }) });
  const registryClient = client(registry.url);
  const jobsClient = client(jobs.url);
  const cluster = await registryClient.clusters().create(`${options.label}-cluster`);

  const suite: FaultSuite = {
    env,
    get registry() {
      return registry;
    },
    get jobs() {
      return jobs;
    },
    brokers: brokerProcs,
    proxy,
    apiKey: team.key,
    teamId: team.teamId,
    clusterSlug: cluster.slug,
    jobsClient,
    registryClient,
    runners,
    async restart(which, kill9 = true) {
      const p = which === "registry" ? registry : jobs;
      if (kill9) await p.kill9();
      else await p.stop(5_000);
      dead.push(p.output());
      procs.splice(procs.indexOf(p), 1);
      const next = which === "registry" ? await spawnRegistry() : await spawnJobs();
      if (which === "registry") registry = next;
      else jobs = next;
      procs.push(next);
    },
    async killBroker(i) {
      const b = brokerProcs[i]!;
      alive.delete(b.port);
      await b.kill9();
      dead.push(b.output());
      procs.splice(procs.indexOf(b), 1);
    },
    async startBroker(i) {
      const b = await spawnBroker(i);
      brokerProcs[i] = b;
      procs.push(b);
      alive.add(b.port);
    },
    async startRunner(concurrency = 20) {
      const child = spawn(process.execPath, ["--import", "tsx", workloadRunner], {
        cwd: repoRoot,
        env: {
          ...process.env,
          CORRAL_URL: proxy.url,
          CORRAL_API_KEY: team.key,
          FAULT_CLUSTER: cluster.slug,
          FAULT_CONCURRENCY: String(concurrency),
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      let execs = 0;
      let ready: () => void;
      const readyP = new Promise<void>((r) => (ready = r));
      // Whole lines only: a chunk may end in the middle of "EXEC ..." or "READY".
      let partial = "";
      child.stdout!.on("data", (d: Buffer) => {
        const lines = (partial + d.toString()).split("\n");
        partial = lines.pop()!;
        for (const line of lines) {
          if (line.startsWith("EXEC ")) {
            execs++;
            continue;
          }
          if (line.includes("READY")) ready();
          out += line + "\n";
        }
        if (out.length > 100_000) out = out.slice(-50_000);
      });
      child.stderr!.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.length > 100_000) out = out.slice(-50_000);
      });
      const exit = new Promise<void>((r) => child.once("exit", () => r()));
      let readyTimer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        readyTimer = setTimeout(() => reject(new Error(`runner not ready within 30 s:\n${out}`)), 30_000);
      });
      try {
        await Promise.race([readyP, late, exit.then(() => Promise.reject(new Error(`runner exited before its Welcome:\n${out}`)))]);
      } finally {
        clearTimeout(readyTimer);
      }
      const r: RunnerProcess = {
        child,
        output: () => out,
        executions: () => execs,
        async kill9() {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
          await exit;
        },
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
          const t = setTimeout(() => child.kill("SIGKILL"), 8_000);
          await exit;
          clearTimeout(t);
        },
      };
      runners.push(r);
      return r;
    },
    async submitWorkload(count, perJob, ms) {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const job = await jobsClient
          .jobs()
          .submit(`${options.label}-${i}`, rawFan(perJob, ms), { cluster: cluster.slug });
        ids.push(job.id);
      }
      return ids;
    },
    async waitJobs(ids, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (const id of ids) {
        for (;;) {
          const job = await suite.jobsClient.jobs().find(id).catch(() => undefined);
          if (job && [JobState.COMPLETED, JobState.FAILED, JobState.CANCELED].includes(job.state)) break;
          if (Date.now() > deadline) throw new Error(`job ${id} is stuck in ${job?.state}`);
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    },
    async check(ids, perJob) {
      const out: LedgerCheck = {
        jobs: ids.length,
        completedJobs: 0,
        tasksExpected: ids.length * (perJob + 1),
        tasksRecorded: 0,
        tasksComputed: 0,
        lost: 0,
        duplicates: 0,
        extraAttempts: 0,
      };
      for (const id of ids) {
        const job = await suite.jobsClient.jobs().find(id);
        if (job.state === JobState.COMPLETED) out.completedJobs++;
        const progress = await suite.jobsClient.jobs().progress(id);
        const work = progress.progress.find((p) => p.label === "work");
        const roots = await suite.jobsClient.jobs().tasks(id);
        const subtasks = roots.length === 1 ? await suite.jobsClient.jobs().tasks(id, { parentId: roots[0]!.id }) : [];
        const all = [...roots, ...subtasks];
        out.tasksRecorded += all.length;
        const computed = all.filter((t) => t.state === TaskState.COMPUTED).length;
        out.tasksComputed += computed;
        out.lost += Math.max(0, perJob + 1 - computed);
        out.duplicates += Math.max(0, all.length - (perJob + 1)) + Math.max(0, Number(work?.done ?? 0n) - perJob);
        out.extraAttempts += all.reduce((n, t) => n + Math.max(0, t.attempt - 1), 0);
      }
      return out;
    },
    logs() {
      return [...dead, ...procs.map((p) => p.output())].join("\n");
    },
    async stop() {
      await Promise.all(runners.map((r) => r.kill9()));
      await Promise.all(procs.map((p) => p.stop(3_000)));
      await proxy.close();
      await database?.drop();
      await dropTestRedisPrefix(env.CORRAL_REDIS_PREFIX!, env.REDIS_URL);
    },
  };
  return suite;
}

function rawFan(n: number, ms: number) {
  return rawTask({ name: "faults/Fan", version: "v1.0" }, { n, ms });
}
