// Issue 7's first run: `corral dev` (what `npm start` runs) without DATABASE_URL starts the embedded
// Postgres, serves the suite on one port with its sample runners, and completes the demo job that a
// second process submits and waits for with the credentials dev saved; Ctrl-C then stops it all.
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dropTestRedisPrefix, testRedisPrefix } from "@corral/server-kit/testing";
import { afterAll, describe, expect, it } from "vitest";
import { cleanEnv, corralBin, runCli } from "../support/cli.js";
import { freePort } from "../support/processes.js";

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("corral dev on the embedded Postgres", () => {
  const root = mkdtempSync(join(tmpdir(), "corral-dev-e2e-"));
  // As root, dev runs Postgres as the `postgres` user, which must reach the data folder.
  chmodSync(root, 0o755);
  const dataDir = join(root, ".corral");
  const redisPrefix = testRedisPrefix("e2e-dev");
  let dev: ChildProcess | undefined;
  let output = "";

  afterAll(async () => {
    if (dev && dev.exitCode === null && dev.signalCode === null) {
      // The whole group: dev and the Postgres it started.
      try {
        process.kill(-dev.pid!, "SIGKILL");
      } catch {
        // gone already
      }
    }
    rmSync(root, { recursive: true, force: true });
    await dropTestRedisPrefix(redisPrefix, process.env.CORRAL_TEST_REDIS_URL);
  });

  it("serves, completes the demo job from a second process, and stops cleanly on SIGINT", { timeout: 200_000 }, async () => {
    const port = await freePort();
    // An endpoint on this machine for dev's gateway, allowed explicitly by address.
    const endpoint = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ status: "completed", output: { echoed: (JSON.parse(body) as { message: string }).message } }));
      });
    });
    await new Promise<void>((resolve) => endpoint.listen(0, "127.0.0.1", resolve));
    const endpointPort = (endpoint.address() as net.AddressInfo).port;
    const env = cleanEnv({
      LOG_LEVEL: "warn",
      CORRAL_REDIS_PREFIX: redisPrefix,
      // Without REDIS_URL dev takes the Redis on 127.0.0.1:6379; CI may name another one.
      ...(process.env.CORRAL_TEST_REDIS_URL ? { REDIS_URL: process.env.CORRAL_TEST_REDIS_URL } : {}),
    });
    expect(env.DATABASE_URL).toBeUndefined();
    // Its own process group, as a terminal would start it, so SIGINT reaches dev and its Postgres alike.
    dev = spawn(process.execPath, [corralBin, "dev", "--port", String(port), "--data-dir", dataDir, "--gateway-allow", `127.0.0.1:${endpointPort}`], {
      cwd: root,
      env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    dev.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    dev.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      dev!.once("exit", (code, signal) => resolve({ code, signal })),
    );

    // The first start initialises Postgres: this takes a while. The banner ends with the Ctrl-C line.
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (/Corral is serving at /.test(output) && /Ctrl-C stops everything/.test(output)) {
          dev!.stdout!.off("data", check);
          resolve();
        }
      };
      dev!.stdout!.on("data", check);
      void exited.then(() => reject(new Error(`corral dev exited before serving:\n${output}`)));
    });
    expect(output).toContain(`http://127.0.0.1:${port}`);
    const pgPort = Number(/Postgres: postgres:\/\/[^@]+@127\.0\.0\.1:(\d+)\//.exec(output)?.[1]);
    expect(pgPort).toBeGreaterThan(0);
    expect(await portAnswers(pgPort)).toBe(true);
    const postmaster = Number(readFileSync(join(dataDir, "postgres", "postmaster.pid"), "utf8").split("\n")[0]);
    expect(alive(postmaster)).toBe(true);
    const credentials = JSON.parse(readFileSync(join(dataDir, "credentials.json"), "utf8")) as { url: string; apiKey: string };
    expect(credentials.url).toBe(`http://127.0.0.1:${port}`);
    expect(credentials.apiKey).toMatch(/^corral_/);
    expect(output).toContain(credentials.apiKey);
    // The banner says what to export for a shell or a runner started elsewhere.
    expect(output).toContain(`export CORRAL_URL=http://127.0.0.1:${port} CORRAL_API_KEY=${credentials.apiKey}`);
    // A command run from a subdirectory of dev's folder finds .corral/credentials.json upwards.
    const subdirectory = join(root, "src", "tasks");
    mkdirSync(subdirectory, { recursive: true });
    const listed = await runCli(["cluster", "list", "--json"], { cwd: subdirectory, env: { LOG_LEVEL: "warn" } });
    expect(listed.code, listed.stderr).toBe(0);

    // A second terminal elsewhere submits with the saved URL and key as flags...
    const elsewhere = join(root, "elsewhere");
    mkdirSync(elsewhere);
    const submitted = await runCli(
      ["job", "submit", "demo", "--json", "--url", credentials.url, "--api-key", credentials.apiKey],
      { cwd: elsewhere, env: { LOG_LEVEL: "warn" } },
    );
    expect(submitted.code, submitted.stderr + output).toBe(0);
    const job = JSON.parse(submitted.stdout) as { id: string; name: string };
    // ...and one in dev's folder finds .corral/credentials.json by itself.
    const waited = await runCli(["job", "wait", job.id, "--json"], { cwd: root, env: { LOG_LEVEL: "warn" }, timeoutMs: 90_000 });
    expect(waited.code, waited.stderr + output).toBe(0);
    const done = JSON.parse(waited.stdout) as { state: string; progress: Array<{ label: string; total: string; done: string }> };
    expect(done.state).toBe("JOB_STATE_COMPLETED");
    expect(done.progress).toEqual([{ label: "tiles", total: "24", done: "24" }]);

    // The picture lands in dev's data dir, written by its sample runner.
    const picture = join(dataDir, "demo", `mandelbrot-${job.id}.txt`);
    expect(existsSync(picture), output).toBe(true);
    const rows = readFileSync(picture, "utf8").replace(/\n$/, "").split("\n");
    expect(rows).toHaveLength(48);
    for (const row of rows) expect(row).toHaveLength(120);
    expect(rows.join("")).toContain("@");
    expect(existsSync(join(elsewhere, ".corral"))).toBe(false);

    // dev's gateway executes a route to the local endpoint (allowed by --gateway-allow).
    expect(output).toContain(`they may call 127.0.0.1:${endpointPort}`);
    const routed = await runCli(["route", "create", "echo_job@v1.0", `http://127.0.0.1:${endpointPort}/echo/run`], { cwd: root, env: { LOG_LEVEL: "warn" } });
    expect(routed.code, routed.stderr).toBe(0);
    const echoJob = await runCli(["job", "submit", "--task", "echo_job@v1.0", "--input", '{"message":"via dev","delay":0}', "--json"], { cwd: root, env: { LOG_LEVEL: "warn" } });
    expect(echoJob.code, echoJob.stderr).toBe(0);
    const echoed = await runCli(["job", "result", (JSON.parse(echoJob.stdout) as { id: string }).id, "--json"], { cwd: root, env: { LOG_LEVEL: "warn" }, timeoutMs: 90_000 });
    expect(echoed.code, echoed.stderr + output).toBe(0);
    expect(JSON.parse(echoed.stdout)).toEqual({ status: "completed", output: { echoed: "via dev" } });
    endpoint.close();

    // Ctrl-C: the whole group gets SIGINT; dev stops everything in order and exits 0.
    process.kill(-dev.pid!, "SIGINT");
    const end = await exited;
    expect(end, output).toEqual({ code: 0, signal: null });
    expect(await portAnswers(port)).toBe(false);
    expect(await portAnswers(pgPort)).toBe(false);
    expect(alive(postmaster)).toBe(false);
    expect(existsSync(join(dataDir, "postgres", "postmaster.pid"))).toBe(false);
  });
});
