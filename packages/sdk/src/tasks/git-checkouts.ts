// environment.git of corral/RunScript: a cache of checkouts on the runner, one per repository and
// commit. A checkout is cloned and prepared (`npm ci`, `uv sync`) once: tasks of this process share
// the preparation under way, other processes wait on a lock file, and a checkout becomes visible
// only when complete (a symlink renamed into place), so a crash mid-clone leaves nothing used later.
// Each repository keeps its most recently used checkouts (`keep`, default 5); after a new one is
// prepared, older ones no task holds are removed. A task holds its checkout through a use file
// named with its process id, made before it looks for the checkout; eviction removes the link
// first and then looks for use files, so a checkout is never removed under a task that found it.
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { lstat, lutimes, mkdir, open, readdir, readFile, readlink, realpath, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { UnrecoverableTaskError } from "../errors.js";
import { sleep } from "../transport.js";
import type { GitRef } from "./run-script-input.js";
import { findOnPath, spawnCommand } from "./run-command.js";

/** A repository's commit checked out and prepared. */
export interface Checkout {
  commit: string;
  /** The checkout's folder (its real path). */
  dir: string;
}

/** A checkout a task uses: not removed until released. */
export interface HeldCheckout extends Checkout {
  release(): Promise<void>;
}

/** Checkouts kept per repository by default: the most recently used. */
export const DEFAULT_CHECKOUTS_KEPT = 5;

/** A complete checkout's link is named by its commit (SHA-1 or SHA-256 hex). */
const commitName = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;

/** Protocols git may use for a script's repository, submodules and redirects included. */
const gitProtocols = "https:ssh:git:file";

/** How long cloning and preparing one commit may take before it is stopped (and the task fails, to be retried). */
const prepareTimeoutMs = 30 * 60_000;

/** How long a lock file without a pid in it may be young before it counts as left by a crash. */
const emptyLockStaleMs = 10_000;

/** A git or install step failed; retried as any task failure (the network may come back). */
export class GitEnvironmentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GitEnvironmentError";
  }
}

/** What to run after cloning, when its lock file is in the checkout's root. */
const installers = [
  { lockFile: "package-lock.json", program: "npm", args: ["ci", "--no-audit", "--no-fund"] },
  { lockFile: "uv.lock", program: "uv", args: ["sync", "--locked"] },
] as const;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Waits for `promise`, or rejects when `signal` aborts first (the promise goes on for others). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err as Error);
      },
    );
  });
}

/** The environment git and installers run with: the script's base environment, never prompting. */
export function gitEnv(base: Record<string, string>): Record<string, string> {
  return {
    ...base,
    GIT_TERMINAL_PROMPT: "0",
    GIT_ALLOW_PROTOCOL: gitProtocols,
    GIT_SSH_COMMAND: base.GIT_SSH_COMMAND ?? "ssh -o BatchMode=yes",
  };
}

export class GitCheckouts {
  /** `<cache dir>/git`. */
  readonly dir: string;
  /** Checkouts kept per repository (the most recently used). */
  readonly keep: number;
  readonly #inFlight = new Map<string, Promise<Checkout>>();
  #clones = 0;

  constructor(cacheDir: string, options: { keep?: number } = {}) {
    this.dir = join(resolve(cacheDir), "git");
    this.keep = Math.max(1, options.keep ?? DEFAULT_CHECKOUTS_KEPT);
  }

  /** How many clones this process made (one per repository and commit unless evicted). */
  get clones(): number {
    return this.#clones;
  }

  /** The folder of one repository's checkouts. */
  repositoryDir(url: string): string {
    return join(this.dir, createHash("sha256").update(url).digest("hex").slice(0, 24));
  }

  /**
   * The checkout of `url` at `ref`, cloning and preparing it when this commit is not cached. The
   * ref is resolved to a commit on every call (a branch moves); the clone is per commit.
   */
  async checkout(url: string, ref: GitRef, env: Record<string, string>, signal: AbortSignal): Promise<HeldCheckout> {
    const commit = await this.resolveCommit(url, ref, env, signal);
    const parent = this.repositoryDir(url);
    const key = join(parent, commit);
    await mkdir(parent, { recursive: true });
    // The use file comes first: an eviction that removes the link after this sees it.
    const use = join(parent, `${commit}.use-${process.pid}-${randomBytes(6).toString("hex")}`);
    await writeFile(use, "");
    const release = () => rm(use, { force: true });
    try {
      let dir = await this.#ready(key);
      if (!dir) {
        let pending = this.#inFlight.get(key);
        if (!pending) {
          // Shared by every task waiting for this commit: one task's cancel does not stop it.
          pending = this.#prepare(url, commit, key, env).finally(() => this.#inFlight.delete(key));
          this.#inFlight.set(key, pending);
        }
        dir = (await untilAborted(pending, signal)).dir;
      }
      // The link's own time is when the checkout was last used.
      const now = new Date();
      await lutimes(key, now, now).catch(() => {});
      return { commit, dir, release };
    } catch (err) {
      await release();
      throw err;
    }
  }

  /**
   * Removes the checkouts of `url` past the `keep` most recently used that no task holds; answers
   * the commits removed. Runs after each new checkout of the repository is prepared.
   */
  async evict(url: string): Promise<string[]> {
    const parent = this.repositoryDir(url);
    const unlock = await acquireLock(join(parent, "evict.lock"));
    const removed: string[] = [];
    try {
      const names = await readdir(parent);
      const links = await Promise.all(
        names.filter((n) => commitName.test(n)).map(async (n) => ({ commit: n, usedMs: (await lstat(join(parent, n))).mtimeMs })),
      );
      links.sort((a, b) => b.usedMs - a.usedMs);
      for (const { commit } of links.slice(this.keep)) {
        if (await evictOne(parent, commit)) removed.push(commit);
      }
    } finally {
      await unlock();
    }
    return removed;
  }

  /** The commit `ref` names on the remote now. */
  async resolveCommit(url: string, ref: GitRef, env: Record<string, string>, signal: AbortSignal): Promise<string> {
    if (ref.kind === "commit") return ref.sha;
    const pattern = ref.kind === "head" ? "HEAD" : ref.kind === "branch" ? `refs/heads/${ref.name}` : ref.name;
    const out = await git(["ls-remote", "--", url, pattern], env, signal);
    const refs = new Map<string, string>();
    for (const line of out.split("\n")) {
      const [sha, name] = line.split("\t");
      if (sha && name) refs.set(name, sha);
    }
    const wanted =
      ref.kind === "head"
        ? ["HEAD"]
        : ref.kind === "branch"
          ? [`refs/heads/${ref.name}`]
          : [ref.name, `refs/tags/${ref.name}^{}`, `refs/tags/${ref.name}`, `refs/heads/${ref.name}`];
    for (const name of wanted) {
      const sha = refs.get(name);
      if (sha) return sha;
    }
    const what = ref.kind === "head" ? "HEAD" : ref.kind === "branch" ? `branch ${JSON.stringify(ref.name)}` : `ref ${JSON.stringify(ref.name)}`;
    throw new UnrecoverableTaskError(`corral/RunScript environment.git: ${withoutPassword(url)} has no ${what}`);
  }

  /** The real path of a complete checkout, or undefined. */
  async #ready(key: string): Promise<string | undefined> {
    try {
      return await realpath(key);
    } catch {
      return undefined;
    }
  }

  async #prepare(url: string, commit: string, key: string, env: Record<string, string>): Promise<Checkout> {
    const parent = this.repositoryDir(url);
    await mkdir(parent, { recursive: true });
    const release = await acquireLock(`${key}.lock`);
    try {
      const ready = await this.#ready(key);
      if (ready) return { commit, dir: ready };
      await removeLeftovers(parent, commit);
      const dir = `${key}.d-${randomBytes(6).toString("hex")}`;
      try {
        // Not any one task's signal: the tasks waiting for this commit share it.
        const signal = AbortSignal.timeout(prepareTimeoutMs);
        await git(["clone", "--no-checkout", "--quiet", "--", url, dir], env, signal);
        this.#clones += 1;
        await git(["-C", dir, "checkout", "--quiet", "--detach", commit, "--"], env, signal);
        await install(dir, env, signal);
        // Visible only now, complete.
        await placeLink(basename(dir), key);
      } catch (err) {
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
      return { commit, dir: await realpath(key) };
    } finally {
      await release();
      // Outside this commit's lock: eviction takes the lock of each commit it removes.
      await this.evict(url).catch(() => {});
    }
  }
}

/**
 * Makes `key` a link to `target` that appears whole (renamed into place) or not at all; `used`
 * sets its time (when its checkout was last used), else it is now.
 */
async function placeLink(target: string, key: string, used?: Date): Promise<void> {
  const link = `${key}.link-${randomBytes(6).toString("hex")}`;
  await symlink(target, link);
  if (used) await lutimes(link, used, used);
  await rename(link, key);
}

/**
 * Removes one checkout unless a task holds it, under its commit's lock (nobody prepares it
 * meanwhile): the link goes first, so a task that looks for it from now on prepares it afresh,
 * then the use files are read; a live one puts the link back. Answers whether it was removed.
 */
async function evictOne(parent: string, commit: string): Promise<boolean> {
  const key = join(parent, commit);
  const unlock = await acquireLock(`${key}.lock`);
  try {
    let target: string;
    let used: Date;
    try {
      target = await readlink(key);
      used = (await lstat(key)).mtime;
    } catch {
      return false;
    }
    await rm(key, { force: true });
    if (await heldByLiveTask(parent, commit)) {
      // Put back as it was, its last use included.
      await placeLink(target, key, used);
      return false;
    }
    await rm(join(parent, target), { recursive: true, force: true });
    return true;
  } finally {
    await unlock();
  }
}

/** Whether a live process holds a use file of `commit`; use files of processes gone are removed. */
async function heldByLiveTask(parent: string, commit: string): Promise<boolean> {
  const prefix = `${commit}.use-`;
  let held = false;
  for (const name of await readdir(parent)) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split("-")[0]);
    if (pid > 0 && alive(pid)) held = true;
    else await rm(join(parent, name), { force: true });
  }
  return held;
}

/** Removes what a crashed preparation of this commit left: folders no link points to, stray links. */
async function removeLeftovers(parent: string, commit: string): Promise<void> {
  let target: string | undefined;
  try {
    target = await readlink(join(parent, commit));
  } catch {
    target = undefined;
  }
  for (const name of await readdir(parent)) {
    if (!name.startsWith(`${commit}.d-`) && !name.startsWith(`${commit}.link-`)) continue;
    if (name === target) continue;
    await rm(join(parent, name), { recursive: true, force: true });
  }
}

/**
 * Takes the lock file at `path` (created exclusively, holding this pid), waiting while a live
 * process holds it; a lock of a process that is gone is taken over. Resolves with its release.
 */
async function acquireLock(path: string): Promise<() => Promise<void>> {
  for (;;) {
    try {
      const file = await open(path, "wx");
      try {
        await file.writeFile(`${process.pid}\n`);
      } finally {
        await file.close();
      }
      return () => rm(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const holder = Number((await readFile(path, "utf8").catch(() => "")).trim());
    const stale =
      holder > 0
        ? !alive(holder)
        : await lstat(path).then(
            (s) => Date.now() - s.mtimeMs > emptyLockStaleMs,
            () => false,
          );
    if (stale) {
      await rm(path, { force: true });
      continue;
    }
    await sleep(100);
  }
}

/** Runs the installer of each lock file in the checkout's root (npm ci, uv sync). */
async function install(dir: string, env: Record<string, string>, signal: AbortSignal): Promise<void> {
  for (const step of installers) {
    if (!existsSync(join(dir, step.lockFile))) continue;
    const program = findOnPath(step.program, env.PATH);
    if (!program) {
      throw new UnrecoverableTaskError(
        `corral/RunScript environment.git: the repository has a ${step.lockFile}, so it needs \`${step.program} ${step.args[0]}\`, but ${step.program} is not on this runner's PATH (${env.PATH ?? "unset"})`,
      );
    }
    const r = await spawnCommand({ argv: [program, ...step.args], cwd: dir, env, tailBytes: 4096 }, signal);
    if (r.exitCode !== 0) {
      throw new GitEnvironmentError(`corral/RunScript environment.git: \`${step.program} ${step.args.join(" ")}\` failed (exit code ${r.exitCode ?? r.signal}):\n${r.output}`);
    }
  }
}

/** Runs git, answering its stdout; a failure throws with its stderr. */
async function git(args: string[], env: Record<string, string>, signal: AbortSignal): Promise<string> {
  const program = findOnPath("git", env.PATH);
  if (!program) {
    throw new UnrecoverableTaskError(`corral/RunScript environment.git needs git on this runner's PATH (${env.PATH ?? "unset"}), and it is not there`);
  }
  const r = await spawnCommand({ argv: [program, ...args], env, tailBytes: 65536 }, signal);
  if (r.exitCode !== 0) {
    const why = r.stderrTail.trim().replaceAll(/(\/\/[^/@\s:]*:)[^/@\s]*@/g, "$1***@");
    throw new GitEnvironmentError(`corral/RunScript environment.git: git ${args[0]} failed (exit code ${r.exitCode ?? r.signal}): ${why}`);
  }
  return r.stdoutTail;
}

/** A repository URL as messages show it: a password in it replaced by `***`. */
export function withoutPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === "") return url;
    parsed.password = "***";
    return parsed.href;
  } catch {
    return url;
  }
}

/** The workdir inside a checkout, checked to be a folder there. */
export async function checkoutWorkdir(checkout: Checkout, workdir: string, url: string): Promise<string> {
  const path = join(checkout.dir, workdir);
  const isDir = await stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir) {
    throw new UnrecoverableTaskError(
      `corral/RunScript input.environment.git.workdir: ${JSON.stringify(workdir)} is not a folder of ${withoutPassword(url)} at ${checkout.commit}`,
    );
  }
  return path;
}

const caches = new Map<string, GitCheckouts>();

/** The checkout cache of a folder: one per folder in a process, so its tasks share clones under way. */
export function gitCheckouts(cacheDir: string): GitCheckouts {
  const dir = resolve(cacheDir);
  let cache = caches.get(dir);
  if (!cache) {
    cache = new GitCheckouts(dir);
    caches.set(dir, cache);
  }
  return cache;
}
