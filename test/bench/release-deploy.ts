// Release deploy benchmark: on a release runner that is already running (`corral runner start
// --cluster X`, a real process behind an ingress routing by service path), the time from
// DeployRelease to the first task of the new version executing, with a 1 MiB bundle (a task class
// padded with a large string constant); then the runner's memory per loaded release (RSS and PSS
// of its child processes, from /proc). Prints JSON.
//
//   npx tsx test/bench/release-deploy.ts      BENCH_ROUNDS (default 5), BENCH_RELEASES (default 4)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { rawTask, type Client } from "@corral/sdk";
import { startBalancer } from "../scale/support/h2-balancer.js";
import { spawnCli } from "../support/cli.js";
import { suiteClient, waitUntil } from "../support/clients.js";
import { memoryOf, processTree, releaseChildren } from "../support/release-children.js";
import { startSuite } from "../support/suite.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const RELEASES = Number(process.env.BENCH_RELEASES ?? 4);
const MiB = 1024 * 1024;

/** A bundle of about 1 MiB exporting one task `name`, which says when it started (its display). */
function paddedBundle(taskName: string, seed: string): Buffer {
  const head = `import { Task } from "@corral/sdk";\n`;
  const task = `export class T extends Task {
  static identifier = { name: ${JSON.stringify(taskName)}, version: "v1.0" };
  execute(ctx) { ctx.setDisplay(String(Date.now()) + " " + PAD.length); }
}\n`;
  const unit = `${seed}-0123456789abcdefghijklmnopqrstuvwxyz-`;
  const pad = unit.repeat(Math.ceil((MiB - head.length - task.length) / unit.length));
  return Buffer.from(`${head}const PAD = ${JSON.stringify(pad)};\n${task}`);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mib = (bytes: number) => Math.round((bytes / MiB) * 10) / 10;

async function main() {
  const suite = await startSuite({ label: "bench-release-deploy", env: { CORRAL_LOG_LEVEL: "warn" } });
  const ingress = await startBalancer([
    { prefix: "/corral.registry.", backends: [suite.registry.url] },
    { prefix: "/corral.jobs.", backends: [suite.jobs.url] },
    { prefix: "/corral.broker.", backends: [suite.broker.url] },
  ]);
  const client: Client = suiteClient(suite);
  const cacheDir = mkdtempSync(join(tmpdir(), "corral-bench-release-"));
  const cluster = await client.clusters().create("bench releases");
  const runnerId = "bench-release-runner";
  const runner = spawnCli(["runner", "start", "--cluster", cluster.slug, "--runner-id", runnerId, "--concurrency", "4"], {
    env: { CORRAL_URL: ingress.url, CORRAL_API_KEY: suite.apiKey, CORRAL_CACHE_DIR: cacheDir, CORRAL_LOG_LEVEL: "info" },
  });
  // The runner's JSON log lines give the steps between: the watch's new set, and each release loaded.
  const seenAt = new Map<string, number>();
  const loadedAt = new Map<string, number>();
  let partial = "";
  const onOutput = (d: Buffer) => {
    const lines = (partial + d.toString()).split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      let entry: { msg?: string; time?: number; releases?: string[]; release?: string };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        process.stderr.write(`${line}\n`);
        continue;
      }
      if (entry.msg?.startsWith("deployments of")) for (const r of entry.releases ?? []) if (!seenAt.has(r)) seenAt.set(r, entry.time!);
      if (entry.msg === "release loaded" && entry.release) loadedAt.set(entry.release, entry.time!);
      if ((entry as { level?: number }).level! >= 40) process.stderr.write(`${line}\n`);
    }
  };
  runner.stdout!.on("data", onOutput);
  runner.stderr!.on("data", onOutput);
  try {
    await waitUntil("the release runner to connect", () => client.nodes().find(runnerId).catch(() => undefined), 120_000);

    // Deploy → first task: each round a new version of one release exports a new task name, so
    // only the new version can run the task queued before its deploy.
    const rounds: Array<{
      deploy_to_first_task_ms: number;
      deploy_to_watch_ms: number;
      watch_to_loaded_ms: number;
      deploy_to_job_done_seen_ms: number;
      bundle_bytes: number;
    }> = [];
    for (let round = 0; round < ROUNDS; round++) {
      const taskName = `bench/Round${round}`;
      const bundle = paddedBundle(taskName, `r${round}`);
      const version = `1.0.${round}`;
      await client.releases().publish(bundle, { name: "bench", version, manifest: { identifiers: [`${taskName}@v1.0`], nodeEngine: ">=20" } });
      const job = await client.jobs().submit(`round ${round}`, rawTask({ name: taskName, version: "v1.0" }), { cluster: cluster.slug });
      const deployedAt = Date.now();
      const t0 = performance.now();
      await client.releases().deploy("bench", version, { cluster: cluster.slug });
      await client.jobs().wait(job.id);
      const seen = performance.now() - t0;
      const [task] = await client.jobs().tasks(job.id);
      const key = `bench@${version}`;
      await waitUntil("the runner's log of the load", async () => loadedAt.has(key) && seenAt.has(key));
      rounds.push({
        deploy_to_first_task_ms: Number(task!.display.split(" ")[0]) - deployedAt,
        deploy_to_watch_ms: seenAt.get(key)! - deployedAt,
        watch_to_loaded_ms: loadedAt.get(key)! - seenAt.get(key)!,
        deploy_to_job_done_seen_ms: Math.round(seen),
        bundle_bytes: bundle.length,
      });
    }

    // Memory: RELEASES releases (1 MiB each) loaded at once; the round's release stays deployed too.
    await client.releases().undeploy("bench", { cluster: cluster.slug });
    await waitUntil("the round release's process to exit", async () => releaseChildren(runner.pid!).size === 0, 60_000);
    const idleRunner = memoryOf(runner.pid!);
    for (let i = 0; i < RELEASES; i++) {
      const taskName = `bench/Mem${i}`;
      await client.releases().publish(paddedBundle(taskName, `m${i}`), { name: `mem-${i}`, version: "1.0.0", manifest: { identifiers: [`${taskName}@v1.0`] } });
      await client.releases().deploy(`mem-${i}`, "1.0.0", { cluster: cluster.slug });
    }
    await waitUntil(
      "every release loaded",
      async () => (await client.nodes().find(runnerId)).identifiers.length === RELEASES,
      120_000,
    );
    // One task each, so every child has run task code (its SDK loaded and warm), as in service.
    const jobs = await Promise.all(
      Array.from({ length: RELEASES }, (_, i) => client.jobs().submit(`mem ${i}`, rawTask({ name: `bench/Mem${i}`, version: "v1.0" }), { cluster: cluster.slug })),
    );
    await Promise.all(jobs.map((j) => client.jobs().wait(j.id)));
    // A child's own memory, and with whatever it started itself (none expected; counted if there).
    const children = [...releaseChildren(runner.pid!).entries()].map(([release, pid]) => {
      const tree = processTree(pid).map(memoryOf);
      return { release, pid, ...memoryOf(pid), treeProcesses: tree.length, treeRss: tree.reduce((n, m) => n + m.rss, 0) };
    });
    const loadedRunner = memoryOf(runner.pid!);

    const firstTask = rounds.map((r) => r.deploy_to_first_task_ms);
    const rss = children.map((c) => c.rss);
    const pss = children.map((c) => c.pss ?? 0);
    console.log(
      JSON.stringify(
        {
          bench: "release-deploy",
          date: new Date().toISOString(),
          node: process.version,
          cpus: (await import("node:os")).cpus().length,
          loadavg: (await import("node:os")).loadavg().map((l) => Math.round(l * 10) / 10),
          bundle_bytes: rounds[0]?.bundle_bytes,
          deploy_to_first_task_ms: { median: median(firstTask), min: Math.min(...firstTask), max: Math.max(...firstTask), rounds: firstTask },
          // Its steps: the deploy reaching the runner's watch, then download, child start and import.
          deploy_to_watch_ms: rounds.map((r) => r.deploy_to_watch_ms),
          watch_to_loaded_ms: rounds.map((r) => r.watch_to_loaded_ms),
          deploy_to_job_done_seen_ms: rounds.map((r) => r.deploy_to_job_done_seen_ms),
          memory: {
            releases_loaded: children.length,
            child_rss_mib: { median: mib(median(rss)), min: mib(Math.min(...rss)), max: mib(Math.max(...rss)) },
            child_pss_mib: { median: mib(median(pss)), min: mib(Math.min(...pss)), max: mib(Math.max(...pss)) },
            child_tree: { processes_per_child: children.map((c) => c.treeProcesses), rss_mib_median: mib(median(children.map((c) => c.treeRss))) },
            runner_rss_mib: { no_release: mib(idleRunner.rss), with_releases: mib(loadedRunner.rss) },
          },
        },
        null,
        2,
      ),
    );
  } finally {
    runner.kill("SIGTERM");
    await new Promise<void>((resolve) => {
      if (runner.exitCode !== null) return resolve();
      const force = setTimeout(() => runner.kill("SIGKILL"), 15_000);
      runner.once("exit", () => {
        clearTimeout(force);
        resolve();
      });
    });
    await ingress.close();
    await suite.stop();
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

await main();
