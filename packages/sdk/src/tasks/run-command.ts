// Runs one command as a child process in its own process group, keeping only the tails of what it
// writes; a cancel or a timeout kills the whole group (SIGTERM, then SIGKILL after a grace).
import { spawn } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { tailBytes } from "./echo.js";

export interface CommandOptions {
  /** The program and its arguments (no shell unless argv names one). */
  argv: string[];
  cwd?: string;
  /** The whole environment the command sees. */
  env: Record<string, string>;
  /** Kill the command after this long. */
  timeoutMs?: number;
  /** Bytes kept of the end of stdout, of stderr, and of both interleaved (default 4096). */
  tailBytes?: number;
}

export interface CommandResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The last bytes of stdout and stderr, interleaved as they arrived. */
  output: string;
  stdoutTail: string;
  stderrTail: string;
}

const killGraceMs = 5000;

/** The last `max` bytes written to a stream, without keeping the rest. */
class ByteTail {
  #buf = Buffer.alloc(0);
  constructor(readonly max: number) {}
  push(chunk: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, chunk]);
    // Trimmed now and then, not on every chunk: a copy of max bytes per max bytes written.
    if (this.#buf.length > this.max * 2) this.#buf = Buffer.from(this.#buf.subarray(-this.max));
  }
  text(): string {
    return tailBytes(this.#buf.subarray(-this.max).toString("utf8"), this.max);
  }
}

/**
 * Runs `argv` and resolves with its exit and output tails; rejects only when it cannot be started
 * (ENOENT, a bad cwd). Aborting `signal` kills its process group.
 */
export function spawnCommand(options: CommandOptions, signal: AbortSignal): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    signal.throwIfAborted();
    const max = options.tailBytes ?? 4096;
    const [program, ...args] = options.argv;
    const child = spawn(program!, args, {
      cwd: options.cwd,
      env: options.env,
      detached: true, // its own process group, so a kill reaches its children too
      stdio: ["ignore", "pipe", "pipe"],
    });
    const stdout = new ByteTail(max);
    const stderr = new ByteTail(max);
    const both = new ByteTail(max);
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout.push(chunk);
      both.push(chunk);
    });
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr.push(chunk);
      both.push(chunk);
    });
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (sig: NodeJS.Signals) => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // Already gone.
      }
    };
    const stop = () => {
      killGroup("SIGTERM");
      killTimer = setTimeout(() => killGroup("SIGKILL"), killGraceMs);
      killTimer.unref();
    };
    signal.addEventListener("abort", stop, { once: true });
    const timeout = options.timeoutMs ? setTimeout(stop, options.timeoutMs) : undefined;
    let settled = false;
    const cleanUp = () => {
      settled = true;
      signal.removeEventListener("abort", stop);
      clearTimeout(timeout);
      clearTimeout(killTimer);
    };
    child.on("error", (err) => {
      if (settled) return;
      cleanUp();
      reject(err);
    });
    const finish = (exitCode: number | null, sig: NodeJS.Signals | null) => {
      if (settled) return;
      cleanUp();
      resolve({ exitCode, signal: sig, output: both.text(), stdoutTail: stdout.text(), stderrTail: stderr.text() });
    };
    child.on("close", finish);
    // A descendant that left the process group may hold the pipes open: do not wait on it long.
    child.on("exit", (exitCode, sig) => setTimeout(() => finish(exitCode, sig), 1000).unref());
  });
}

/** Where `program` is on `path` (a PATH value): the first executable file of that name; undefined when none. */
export function findOnPath(program: string, path: string | undefined): string | undefined {
  for (const dir of (path ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, program);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not there, or not executable.
    }
  }
  return undefined;
}
