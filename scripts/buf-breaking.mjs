// buf breaking (FILE rules) of the working tree against a git ref: the last landed main by
// default (`CORRAL_BREAKING_BASE`, else origin/main when it exists, else HEAD).
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(fileURLToPath(import.meta.url), "../..");
const git = (...args) => execFileSync("git", args, { cwd: root, encoding: "utf8" }).trim();
let base = process.argv[2] ?? process.env.CORRAL_BREAKING_BASE;
if (!base) {
  try {
    base = git("rev-parse", "--verify", "-q", "origin/main");
  } catch {
    base = "HEAD";
  }
}
try {
  git("cat-file", "-e", `${base}:buf.yaml`);
} catch {
  console.log(`no contracts at ${base}: nothing to compare`);
  process.exit(0);
}
execFileSync(join(root, "node_modules/.bin/buf"), ["breaking", "--against", `.git#ref=${base}`], {
  cwd: root,
  stdio: "inherit",
});
console.log(`buf breaking: no breaking change against ${base}`);
