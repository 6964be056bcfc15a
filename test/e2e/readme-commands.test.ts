// The `sh` blocks of README.md and the package READMEs, run as written against a started suite
// (`corral dev` in a fresh folder), so a command the docs show cannot rot. A block runs from its
// start up to its first line that is not safe here (one that runs until stopped, needs machines
// or files the reader would have, or installs things); the rest of that block is skipped.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, dropTestRedisPrefix, testRedisPrefix, type TestDatabase } from "@corral/server-kit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, corralBin } from "../support/cli.js";
import { freePort, repoRoot } from "../support/processes.js";

const readmes = ["README.md", "packages/cli/README.md", "packages/sdk/README.md", "services/job-service/README.md", "services/task-broker/README.md"];

/** Lines safe to run against a throwaway suite: they end by themselves and need nothing else. */
const safe = [
  /^(npx )?corral (job (submit|wait|list|get|visualize)|cluster (create|list)|node list|key create|runtime)\b/,
  /^(npx )?corral runner start .*--until-idle/,
  /^[A-Z]+=\$\((npx )?corral (cluster create|job submit)\b/,
  /^(export )?[A-Z_]+=\$\(node -p 'require\("\.\/\.corral\/credentials\.json"\)\.apiKey'\)$/,
  /^cat \.corral\//,
  /^curl -s /,
  /^npx tsx examples\//,
];

interface Block {
  file: string;
  lines: string[];
}

/** Each sh block's leading run of safe lines (comments stripped). */
function runnableBlocks(): Block[] {
  const out: Block[] = [];
  for (const file of readmes) {
    const text = readFileSync(join(repoRoot, file), "utf8");
    for (const m of text.matchAll(/^```sh\n([\s\S]*?)^```/gm)) {
      const lines: string[] = [];
      for (const raw of m[1]!.split("\n")) {
        const line = raw.replace(/\s+#.*$/, "").trim();
        if (line === "") continue;
        if (!safe.some((r) => r.test(line))) break;
        lines.push(line);
      }
      if (lines.length > 0) out.push({ file, lines });
    }
  }
  return out;
}

function run(script: string, cwd: string, env: Record<string, string>): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn("bash", ["-euo", "pipefail", "-c", script], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 150_000);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}

describe("the READMEs' shell commands", () => {
  const root = mkdtempSync(join(tmpdir(), "corral-readme-"));
  const redisPrefix = testRedisPrefix("e2e-readme");
  let database: TestDatabase | undefined;
  let dev: ChildProcess | undefined;
  let port = 0;
  let devOutput = "";

  beforeAll(async () => {
    database = await createTestDatabase("readme");
    port = await freePort();
    // The reader's checkout: `npx corral` and `examples/` resolve as in the repository.
    symlinkSync(join(repoRoot, "node_modules"), join(root, "node_modules"));
    symlinkSync(join(repoRoot, "examples"), join(root, "examples"));
    dev = spawn(process.execPath, [corralBin, "dev", "--port", String(port)], {
      cwd: root,
      env: cleanEnv({
        LOG_LEVEL: "warn",
        DATABASE_URL: database.url,
        CORRAL_REDIS_PREFIX: redisPrefix,
        ...(process.env.CORRAL_TEST_REDIS_URL ? { REDIS_URL: process.env.CORRAL_TEST_REDIS_URL } : {}),
      }),
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    dev.stderr!.on("data", (d: Buffer) => (devOutput += d.toString()));
    await new Promise<void>((resolve, reject) => {
      dev!.stdout!.on("data", (d: Buffer) => {
        devOutput += d.toString();
        if (/Ctrl-C stops everything/.test(devOutput)) resolve();
      });
      dev!.once("exit", () => reject(new Error(`corral dev exited before serving:\n${devOutput}`)));
    });
  }, 120_000);

  afterAll(async () => {
    if (dev && dev.exitCode === null) {
      process.kill(-dev.pid!, "SIGINT");
      await new Promise((resolve) => dev!.once("exit", resolve));
    }
    rmSync(root, { recursive: true, force: true });
    await database?.drop();
    await dropTestRedisPrefix(redisPrefix, process.env.CORRAL_TEST_REDIS_URL);
  });

  const blocks = runnableBlocks();

  it("has runnable blocks in README.md and the CLI's README", () => {
    expect(blocks.filter((b) => b.file === "README.md").length).toBeGreaterThanOrEqual(3);
    expect(blocks.some((b) => b.file === "packages/cli/README.md")).toBe(true);
  });

  for (const [i, block] of blocks.entries()) {
    it(`${block.file} block ${i + 1}: ${block.lines[0]}`, { timeout: 160_000 }, async () => {
      // The docs say port 7700; this suite runs on a free port.
      const script = block.lines.join("\n").replaceAll("127.0.0.1:7700", `127.0.0.1:${port}`);
      const env = cleanEnv({ LOG_LEVEL: "warn", PATH: `${join(repoRoot, "node_modules/.bin")}:${process.env.PATH ?? ""}` });
      const { code, signal, output } = await run(script, root, env);
      expect(code, `${script}\n--- (signal ${signal ?? "none"})\n${output}`).toBe(0);
    });
  }
});
