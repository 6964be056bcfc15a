// Starts Corral's services as separate processes for end-to-end tests, each on a free port, and
// stops them (SIGTERM, then SIGKILL) afterwards.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import net from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * A port for a service to listen on. A port the kernel hands out (listen on 0) is free when
 * checked, but between the check and the service's own listen, another test file running at the
 * same time may be given the same port by the kernel, and then one of the two suites talks to the
 * other's server. So under vitest each concurrently running file (its pool slot, VITEST_POOL_ID)
 * takes ports from a range of its own below the kernel's ephemeral range (32768 and up), which
 * listen(0) never hands out; within a file, ports are taken in turn, skipping any still bound.
 */
export async function freePort(): Promise<number> {
  const pool = Number(process.env.VITEST_POOL_ID);
  if (!Number.isInteger(pool) || pool < 1 || pool > maxPools) return kernelPort();
  const base = firstPoolPort + (pool - 1) * portsPerPool;
  for (let i = 0; i < portsPerPool; i++) {
    const port = base + (nextPoolPort++ % portsPerPool);
    if (await bindable(port)) return port;
  }
  return kernelPort();
}

const firstPoolPort = 20_000;
const portsPerPool = 500;
const maxPools = 24;
let nextPoolPort = 0;

function kernelPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

export interface ServiceProcess {
  name: string;
  url: string;
  port: number;
  child: ChildProcess;
  output(): string;
  /** SIGTERM and wait; SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<number | null>;
  kill9(): Promise<void>;
}

export interface SpawnOptions {
  name: string;
  /** Path of the entry point relative to the repository root. */
  entry: string;
  args?: string[];
  env: Record<string, string>;
  port?: number;
}

/** Spawns a TypeScript entry point with tsx and waits until /healthz answers SERVING. */
export async function spawnService(options: SpawnOptions): Promise<ServiceProcess> {
  const port = options.port ?? (await freePort());
  const child = spawn(process.execPath, ["--import", "tsx", join(repoRoot, options.entry), ...(options.args ?? [])], {
    cwd: repoRoot,
    env: { ...process.env, LOG_LEVEL: "warn", ...options.env, PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const proc: ServiceProcess = {
    name: options.name,
    url,
    port,
    child,
    output: () => out,
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async kill9() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
  await waitServing(proc, exited);
  return proc;
}

async function waitServing(proc: ServiceProcess, exited: Promise<number | null>): Promise<void> {
  let done = false;
  void exited.then(() => (done = true));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (done) throw new Error(`${proc.name} exited before serving:\n${proc.output()}`);
    try {
      const res = await fetch(`${proc.url}/healthz`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await proc.stop(1_000);
  throw new Error(`${proc.name} did not report SERVING within 60 s:\n${proc.output()}`);
}

export function randomServiceKey(): string {
  return `corral_service_${randomBytes(16).toString("hex")}`;
}
