// A task package from a git repository: a shallow clone of the ref into a temporary directory, the
// commit it resolved to, and its dependencies installed from its lock file (scripts not run).
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { relative, resolve } from "node:path";
import { promisify } from "node:util";
import { UsageError } from "../exit-codes.js";

const run = promisify(execFile);

export interface GitCheckout {
  /** The package directory inside the clone. */
  dir: string;
  commit: string;
  /** The ref asked for, or the default branch's name. */
  ref: string;
}

async function git(args: string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await run("git", args, { cwd, maxBuffer: 16 * 1024 * 1024 });
    return stdout.trim();
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? "").trim();
    throw new UsageError(`git ${args[0]} failed: ${stderr || (err as Error).message}`);
  }
}

/** Clones `url` at `ref` (a branch, a tag or a commit) into `into`, an empty directory. */
export async function checkoutGit(url: string, ref: string | undefined, subdir: string | undefined, into: string): Promise<GitCheckout> {
  if (ref === undefined) {
    await git(["clone", "--quiet", "--depth", "1", "--", url, into]);
  } else {
    try {
      await git(["clone", "--quiet", "--depth", "1", "--branch", ref, "--", url, into]);
    } catch {
      // Not a branch or tag: a commit, which servers hand out by fetch.
      await git(["init", "--quiet", into]);
      await git(["fetch", "--quiet", "--depth", "1", "--", url, ref], into);
      await git(["checkout", "--quiet", "FETCH_HEAD"], into);
    }
  }
  const commit = await git(["rev-parse", "HEAD"], into);
  const resolvedRef = ref ?? (await git(["rev-parse", "--abbrev-ref", "HEAD"], into));
  const dir = resolve(into, subdir ?? ".");
  const inside = relative(into, dir);
  if (inside.startsWith("..")) throw new UsageError(`--dir ${subdir}: outside the repository`);
  if (!existsSync(dir)) throw new UsageError(`--dir ${subdir}: no such directory at ${resolvedRef} (${commit.slice(0, 12)})`);
  if (existsSync(resolve(dir, "package-lock.json")) || existsSync(resolve(dir, "npm-shrinkwrap.json"))) {
    try {
      await run("npm", ["ci", "--ignore-scripts", "--no-audit", "--no-fund"], { cwd: dir, maxBuffer: 16 * 1024 * 1024 });
    } catch (err) {
      const stderr = String((err as { stderr?: string }).stderr ?? "").trim();
      throw new UsageError(`npm ci failed in ${subdir ?? "the repository"}: ${stderr.split("\n").slice(-10).join("\n") || (err as Error).message}`);
    }
  }
  return { dir, commit, ref: resolvedRef };
}
