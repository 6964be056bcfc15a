// The benchmark's smoke run (`npm run bench -- --smoke`, a few hundred tasks), so the bench
// cannot rot: every scenario prints a JSON line with a positive rate. Timings are not asserted.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../support/processes.js";

interface BenchRow {
  scenario: string;
  system: string;
  tasks_per_s?: number;
  p50_ms?: number;
  p99_ms?: number;
  samples?: number;
  streams?: number;
  rss_mb?: number;
  backlog?: number;
  cpu_s?: Record<string, number>;
}

function runSmoke(extra: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(repoRoot, "test/bench/run.ts"), "--smoke", ...extra], {
      cwd: repoRoot,
      env: process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("npm run bench -- --smoke", () => {
  it("reports every scenario as a JSON line with a positive rate", { timeout: 180_000 }, async () => {
    const { code, stdout, stderr } = await runSmoke();
    expect(code, stderr.slice(-4000)).toBe(0);
    const rows = stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as BenchRow);
    const find = (scenario: string, system: string) => rows.filter((r) => r.scenario === scenario && r.system === system);

    for (const system of ["corral", "bullmq", "graphile-worker"]) {
      const [row] = find("throughput", system);
      expect(row?.tasks_per_s, system).toBeGreaterThan(0);
    }
    // The peers' rows carry CPU per process too (their workers, the bench, the servers), so CPU
    // per task compares within one run.
    for (const row of [...find("throughput", "bullmq"), ...find("throughput", "graphile-worker"), ...find("latency", "bullmq")]) {
      expect(Object.keys(row.cpu_s ?? {}).sort(), `${row.scenario} ${row.system}`).toEqual(["bench", "postgres", "redis-server", "workers"]);
    }
    expect(find("throughput-fanout", "corral")[0]?.tasks_per_s).toBeGreaterThan(0);
    // Concurrency keys and priorities, beside the default path.
    expect(find("throughput-keys", "corral")[0]?.tasks_per_s).toBeGreaterThan(0);
    for (const system of ["corral", "bullmq"]) {
      const [row] = find("latency", system);
      expect(row?.samples, system).toBeGreaterThan(0);
      expect(row?.p50_ms, system).toBeGreaterThan(0);
      expect(row!.p99_ms).toBeGreaterThanOrEqual(row!.p50_ms!);
    }
    const depth = find("queue-depth", "corral");
    expect(depth.map((r) => r.backlog)).toEqual([0, expect.any(Number)]);
    expect(depth[1]!.backlog).toBeGreaterThan(0);
    for (const r of depth) expect(r.tasks_per_s).toBeGreaterThan(0);
    const idle = find("idle-runners", "corral");
    expect(idle.some((r) => (r.streams ?? 0) > 0)).toBe(true);
    for (const r of idle) expect(r.rss_mb).toBeGreaterThan(0);
    // The table follows the JSON lines.
    expect(stdout).toContain("| scenario | system | result |");
  });

  it("runs Corral's three services in one process with --one-process", { timeout: 180_000 }, async () => {
    const { code, stdout, stderr } = await runSmoke(["--one-process", "--only", "corral,latency"]);
    expect(code, stderr.slice(-4000)).toBe(0);
    const rows = stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as BenchRow)
      .filter((r) => r.system === "corral");
    expect(rows.map((r) => r.scenario).sort()).toEqual(["latency", "throughput", "throughput-fanout"]);
    for (const r of rows) {
      // One process: its CPU is the services', not split into broker, jobs and registry.
      expect(Object.keys(r.cpu_s ?? {}).sort(), r.scenario).toEqual(["bench", "postgres", "redis-server", "runners", "services"]);
    }
  });
});
