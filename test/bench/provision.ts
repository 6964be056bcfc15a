// Provisioning benchmark: how long a cluster of 3 runners takes from `create --wait` to READY on
// this machine, with the services as separate processes and two real `corral agent` processes
// launching real runner processes. Measures the CLI (`corral cluster create --wait`, its own Node
// start included) and the SDK (`clusters().create(..., { wait: true })`), each run on a fresh
// cluster that is stopped (its runners gone) before the next. Prints JSON.
import { performance } from "node:perf_hooks";
import type { ChildProcess } from "node:child_process";
import { ClusterState, HostState } from "@corral/proto";
import { runCli, spawnCli } from "../support/cli.js";
import { suiteClient } from "../support/clients.js";
import { startSuite } from "../support/suite.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const RUNNERS = 3;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const suite = await startSuite({ label: "bench-provision", env: { CORRAL_RECONCILE_INTERVAL: "1s", CORRAL_RUNNER_STOP_GRACE: "2s" } });
const client = suiteClient(suite);
const agents: ChildProcess[] = [];
try {
  for (const name of ["bench-h1", "bench-h2"]) {
    agents.push(
      spawnCli(["agent", "--url", suite.registry.url, "--cpus", "4", "--memory", "8GiB", "--gpus", "0", "--name", name, "--stop-grace", "2"], {
        env: { CORRAL_API_KEY: suite.apiKey },
      }),
    );
  }
  await until(async () => (await client.hosts().all()).filter((h) => h.state === HostState.ONLINE).length === 2, "two hosts online");

  const stopAndDrain = async (slug: string) => {
    await client.clusters().stop(slug);
    await until(async () => (await client.clusters().find(slug)).state === ClusterState.STOPPED, "STOPPED");
    await until(async () => (await client.hosts().all()).every((h) => h.runners.length === 0), "no runners left");
  };

  const cli: number[] = [];
  const sdk: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    let t = performance.now();
    const r = await runCli(["--json", "cluster", "create", `bench-cli-${i}`, "--runners", String(RUNNERS), "--cpus", "1", "--memory", "1GiB", "--wait", "--timeout", "120"], {
      env: { CORRAL_URL: suite.registry.url, CORRAL_API_KEY: suite.apiKey },
      timeoutMs: 150_000,
    });
    cli.push(performance.now() - t);
    if (r.code !== 0) throw new Error(`cluster create --wait failed: ${r.stderr}`);
    await stopAndDrain((JSON.parse(r.stdout) as { slug: string }).slug);

    t = performance.now();
    const c = await client.clusters().create(`bench-sdk-${i}`, { spec: { runnerCount: RUNNERS, runnerCpuCores: 1, runnerMemory: "1 GiB" }, wait: true, timeoutMs: 120_000 });
    sdk.push(performance.now() - t);
    await stopAndDrain(c.slug);
  }
  const round = (xs: number[]) => xs.map((x) => Math.round(x));
  console.log(
    JSON.stringify(
      {
        bench: "provision",
        runners: RUNNERS,
        hosts: 2,
        reconcileIntervalMs: 1000,
        cliCreateWaitMs: { runs: round(cli), median: Math.round(median(cli)) },
        sdkCreateWaitMs: { runs: round(sdk), median: Math.round(median(sdk)) },
      },
      null,
      2,
    ),
  );
} finally {
  await Promise.all(
    agents.map(
      (a) =>
        new Promise<void>((resolve) => {
          if (a.exitCode !== null || a.signalCode !== null) return resolve();
          const t = setTimeout(() => a.kill("SIGKILL"), 15_000);
          a.once("close", () => {
            clearTimeout(t);
            resolve();
          });
          a.kill("SIGTERM");
        }),
    ),
  );
  await suite.stop();
}
