// Runs the `corral` command as a user would: `node packages/cli/bin/corral.js ...` in its own
// process, with its environment and working directory.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "./processes.js";

export const corralBin = join(repoRoot, "packages/cli/bin/corral.js");

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Added to a copy of this process's environment, without any CORRAL_* or DATABASE_URL of ours. */
  env?: Record<string, string>;
  cwd?: string;
  /** SIGKILL after this long (a hung command fails its test instead of the whole run). */
  timeoutMs?: number;
}

/** The environment a fresh terminal would have: nothing of Corral's unless given. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith("CORRAL_") || k === "DATABASE_URL" || k === "REDIS_URL" || k.startsWith("VITEST")) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

export function spawnCli(args: string[], options: CliOptions = {}): ChildProcess {
  return spawn(process.execPath, [corralBin, ...args], {
    cwd: options.cwd ?? repoRoot,
    env: cleanEnv(options.env),
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Runs `corral <args>` to its end. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, options);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 90_000);
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
