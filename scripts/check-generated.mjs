// Fails when generated code is stale: regenerates validate.proto and packages/proto/src/gen into a
// temporary folder and compares them with what is committed.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(fileURLToPath(import.meta.url), "../..");
const tmp = mkdtempSync(join(tmpdir(), "corral-gen-"));
const buf = join(root, "node_modules/.bin/buf");
// buf finds protoc-gen-es on PATH, as it does under npm scripts.
const env = { ...process.env, PATH: `${join(root, "node_modules/.bin")}:${process.env.PATH}` };

function list(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...list(p).map((x) => join(name, x)));
    else out.push(name);
  }
  return out.sort();
}

let stale = [];
try {
  execFileSync("node", [join(root, "scripts/gen-validate-proto.mjs"), join(tmp, "validate.proto")], { stdio: "inherit" });
  execFileSync(buf, ["format", "-w", join(tmp, "validate.proto")], { cwd: root, stdio: "inherit", env });
  if (readFileSync(join(tmp, "validate.proto"), "utf8") !== readFileSync(join(root, "proto/buf/validate/validate.proto"), "utf8")) {
    stale.push("proto/buf/validate/validate.proto");
  }
  execFileSync(buf, ["generate", "--output", tmp], { cwd: root, stdio: "inherit", env });
  const fresh = join(tmp, "packages/proto/src/gen");
  const committed = join(root, "packages/proto/src/gen");
  const a = list(fresh);
  const b = list(committed);
  for (const f of new Set([...a, ...b])) {
    const x = join(fresh, f);
    const y = join(committed, f);
    if (!existsSync(x) || !existsSync(y) || readFileSync(x, "utf8") !== readFileSync(y, "utf8")) {
      stale.push(relative(root, y));
    }
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
if (stale.length > 0) {
  console.error(`generated code is stale; run \`npm run generate\` and commit:\n  ${stale.join("\n  ")}`);
  process.exit(1);
}
console.log("generated code is fresh");
