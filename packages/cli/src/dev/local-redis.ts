// `corral dev` without REDIS_URL: the Redis on 127.0.0.1:6379 when it answers, else a redis-server
// from PATH on a free port with its data in .corral/redis, else a clear message.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import { DevSetupError } from "./embedded-postgres.js";

export interface DevRedis {
  url: string;
  stop(): Promise<void>;
  origin: "env" | "local" | "spawned";
}

async function answers(url: string): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1_000 });
  r.on("error", () => {});
  try {
    await r.connect();
    return (await r.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

function which(cmd: string): string | undefined {
  try {
    return execFileSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export async function resolveRedis(dataRoot: string, freePort: () => Promise<number>): Promise<DevRedis> {
  const given = process.env.REDIS_URL;
  if (given) {
    if (!(await answers(given))) throw new DevSetupError(`REDIS_URL=${given} does not answer.`);
    return { url: given, origin: "env", stop: async () => {} };
  }
  const local = "redis://127.0.0.1:6379";
  if (await answers(local)) return { url: local, origin: "local", stop: async () => {} };
  const bin = which("redis-server");
  if (!bin) {
    throw new DevSetupError(
      "Redis is needed: set REDIS_URL, start one on 127.0.0.1:6379, or install redis-server (e.g. apt-get install redis-server) so corral dev can start it.",
    );
  }
  const port = await freePort();
  const dir = join(dataRoot, "redis");
  mkdirSync(dir, { recursive: true });
  const child: ChildProcess = spawn(
    bin,
    ["--bind", "127.0.0.1", "--port", String(port), "--dir", dir, "--appendonly", "yes", "--save", ""],
    { stdio: "ignore" },
  );
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (await answers(url)) break;
    if (child.exitCode !== null) throw new DevSetupError(`redis-server exited with code ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    origin: "spawned",
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
