// Redis and Postgres servers of a fault test's own, on free ports in a temporary folder, so a
// test can kill and restart them. The machine's own servers are never touched.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../support/processes.js";

const pgBin = "/usr/lib/postgresql/15/bin";

async function waitPort(port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

export interface OwnRedis {
  port: number;
  url: string;
  /** SIGKILL, then a new empty server on the same port. */
  restartEmpty(): Promise<void>;
  stop(): Promise<void>;
}

export async function startOwnRedis(): Promise<OwnRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "corral-redis-"));
  let child: ChildProcess;
  const start = async () => {
    child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], {
      stdio: "ignore",
    });
    await waitPort(port);
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async restartEmpty() {
      child.kill("SIGKILL");
      await exited(child);
      await start();
    },
    async stop() {
      child.kill("SIGKILL");
      await exited(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface OwnPostgres {
  port: number;
  url: string;
  /** Immediate shutdown (like a crash), then start again; resolves once it accepts connections. */
  stopNow(): Promise<void>;
  startAgain(): Promise<void>;
  stop(): Promise<void>;
}

function asPostgres(args: string[]): void {
  const r = spawnSync("runuser", ["-u", "postgres", "--", ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${args.join(" ")} failed: ${r.stderr}${r.stdout}`);
}

export async function startOwnPostgres(): Promise<OwnPostgres> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "corral-pg-"));
  chmodSync(dir, 0o777);
  const data = join(dir, "data");
  asPostgres([`${pgBin}/initdb`, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
  const start = async () => {
    asPostgres([
      `${pgBin}/pg_ctl`,
      "-D",
      data,
      "-l",
      join(dir, "log"),
      "-o",
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`,
      "-w",
      "start",
    ]);
    await waitPort(port);
  };
  await start();
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async stopNow() {
      asPostgres([`${pgBin}/pg_ctl`, "-D", data, "-m", "immediate", "-w", "stop"]);
    },
    startAgain: start,
    async stop() {
      try {
        asPostgres([`${pgBin}/pg_ctl`, "-D", data, "-m", "immediate", "-w", "stop"]);
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
