// Builds the console (vite build) when dist/ is missing or older than its sources, so that
// `npm install` and `npm start` serve a current console with no extra command, and a second run
// costs a hash of the sources instead of a build. The stamp is a hash of every input file.
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const stampFile = join(root, "dist", ".build-stamp");
const inputs = ["index.html", "vite.config.ts", "package.json", "src", "public", "../proto/src"];

function files(path) {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((name) => files(join(path, name)));
}

export function sourceHash() {
  const hash = createHash("sha256");
  for (const file of inputs.flatMap((p) => files(join(root, p)))) {
    hash.update(relative(root, file)).update("\0").update(readFileSync(file)).update("\0");
  }
  return hash.digest("hex");
}

export function isFresh() {
  return existsSync(join(root, "dist", "index.html")) && existsSync(stampFile) && readFileSync(stampFile, "utf8").trim() === sourceHash();
}

/** Builds unless fresh; returns "fresh", "built" or "skipped" (vite not installed, e.g. --omit=dev). */
export function buildIfStale(log = (line) => console.error(line)) {
  if (isFresh()) return "fresh";
  let vite;
  try {
    vite = join(dirname(createRequire(join(root, "package.json")).resolve("vite/package.json")), "bin", "vite.js");
  } catch {
    log("@corral/console: vite is not installed (production install?): the console is not built");
    return "skipped";
  }
  log("@corral/console: building the web console (vite build)");
  const run = spawnSync(process.execPath, [vite, "build", "--logLevel", "warn"], { cwd: root, stdio: "inherit" });
  if (run.status !== 0) throw new Error(`vite build failed (exit ${run.status})`);
  writeFileSync(stampFile, sourceHash() + "\n");
  return "built";
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    buildIfStale();
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}
