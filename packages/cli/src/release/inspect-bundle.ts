// What a bundle exports, found by importing it in a child process (its top-level code runs there,
// not in the CLI), in an empty directory so that anything it did not bundle fails to resolve.
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { TaskIdentifierInit } from "@corral/sdk";
import { UsageError } from "../exit-codes.js";

const childScript = fileURLToPath(new URL("./inspect-bundle-child.ts", import.meta.url));

/** How long a bundle may take to import. */
const IMPORT_TIMEOUT_MS = 60_000;

type ChildAnswer = { ok: true; identifiers: TaskIdentifierInit[] } | { ok: false; error: string };

/** The environment for code we did not write: nothing of Corral's (no API key). */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("CORRAL_")) env[k] = v;
  return env;
}

/** The task identifiers the bundle at `bundlePath` exports; a UsageError when it has none or fails to load. */
export async function inspectBundle(bundlePath: string, cwd: string): Promise<TaskIdentifierInit[]> {
  const child = fork(childScript, [bundlePath], {
    cwd,
    env: childEnv(),
    execArgv: ["--import", import.meta.resolve("tsx")],
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  let stderr = "";
  child.stdout!.resume();
  child.stderr!.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4_000);
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), IMPORT_TIMEOUT_MS);
  let answer: ChildAnswer | undefined;
  child.on("message", (m) => (answer ??= m as ChildAnswer));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (c) => resolve(c));
  }).finally(() => clearTimeout(timer));
  if (!answer) {
    throw new UsageError(`the bundle could not be loaded (its process exited with ${code ?? "a signal"})${stderr ? `:\n${stderr.trim()}` : ""}`);
  }
  if (!answer.ok) throw new UsageError(`the bundle fails to load: ${answer.error}`);
  if (answer.identifiers.length === 0) throw new UsageError("the bundle exports no task classes (a class with a static identifier and an execute method)");
  return answer.identifiers;
}
