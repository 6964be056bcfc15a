// Enforces who may import whom across Corral's workspaces, and that every package a workspace
// imports is declared in its own package.json. `node scripts/check-imports.mjs [root]` prints one
// line per violation (file, import, rule) and exits 1 when there is any; checkImports() is the
// same check as a function, for its test.
//
// Layers (production code; a workspace may import those listed and nothing else of ours):
//   @corral/proto       nothing           (the contracts, generated code behind one public entry)
//   @corral/wire        @corral/proto     (client-side transport, auth interceptor, async queue)
//   @corral/sdk         proto, wire
//   @corral/server-kit  proto, wire
//   services/*          proto, wire, server-kit; never another service: services meet over RPC
//   @corral/cli         all of the above (it runs `corral dev`)
//   @corral/console     @corral/proto     (the web console, bundled for the browser)
// Tests (*.test.ts, src/testing/, src/test-support/) may also import @corral/server-kit and
// @corral/sdk as dev dependencies, to run against a real server or client; a service's tests still
// never import another service. Files outside the workspaces (test/, examples/, scripts/) answer
// only to the rules on generated code and relative paths into src/gen.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const SOURCE = /\.(?:ts|tsx|mts|cts|js|mjs|cjs)$/;
const SKIP_DIRS = new Set(["node_modules", ".git", "dist", "coverage"]);
const builtins = new Set(builtinModules);

/** What each kind of workspace may import of ours in production code. */
const allowedInSource = {
  proto: [],
  wire: ["proto"],
  sdk: ["proto", "wire"],
  "server-kit": ["proto", "wire"],
  service: ["proto", "wire", "server-kit"],
  cli: ["proto", "wire", "sdk", "server-kit", "service"],
  console: ["proto"],
};
/** What tests may import besides: a real server to talk to, a real client to talk with. */
const extraInTests = ["server-kit", "sdk"];

const kindOf = (name, dir) => {
  if (dir.startsWith(`services${sep}`) || dir.startsWith("services/")) return "service";
  const short = name.replace(/^@corral\//, "");
  return short in allowedInSource ? short : undefined;
};

const layerRule = {
  proto: "@corral/proto (the contracts) imports nothing of ours",
  wire: "@corral/wire imports only @corral/proto of ours",
  sdk: "the SDK never imports a service or @corral/server-kit",
  "server-kit": "@corral/server-kit never imports the SDK or a service",
  service: "a service imports packages (proto, wire, server-kit), never the SDK or another service: services meet over RPC",
  cli: "the CLI imports only Corral's workspaces",
  console: "the web console runs in a browser: of ours it imports only @corral/proto",
};

function listSources(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir)) {
    if (SKIP_DIRS.has(name)) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listSources(p));
    else if (SOURCE.test(name) && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

/** Module specifiers a file imports, re-exports or loads with import(), as TypeScript reads them. */
export function importsOf(text) {
  const info = ts.preProcessFile(text, true, true);
  return info.importedFiles.map((f) => f.fileName);
}

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`. */
const packageName = (spec) => spec.split("/").slice(0, spec.startsWith("@") ? 2 : 1).join("/");

const isTestFile = (rel) => /\.test\.[cm]?[jt]s$/.test(rel) || /[\\/]src[\\/](testing|test-support)[\\/]/.test(rel);

function readWorkspaces(root) {
  const rootPkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const workspaces = [];
  for (const pattern of rootPkg.workspaces ?? []) {
    // Our patterns are `folder/*`.
    const base = pattern.replace(/\/\*$/, "");
    if (!existsSync(join(root, base))) continue;
    for (const name of readdirSync(join(root, base)).sort()) {
      const manifest = join(root, base, name, "package.json");
      if (!existsSync(manifest)) continue;
      const pkg = JSON.parse(readFileSync(manifest, "utf8"));
      const dir = join(base, name);
      workspaces.push({
        dir,
        name: pkg.name,
        kind: kindOf(pkg.name, dir),
        dependencies: new Set(Object.keys(pkg.dependencies ?? {})),
        devDependencies: new Set(Object.keys(pkg.devDependencies ?? {})),
      });
    }
  }
  return workspaces;
}

/**
 * Every violation under `root`: `{ file, specifier, rule }`, `file` relative to the root, sorted.
 * @param {string} root the repository root (the folder holding the root package.json)
 */
export function checkImports(root) {
  const workspaces = readWorkspaces(root);
  const byName = new Map(workspaces.map((w) => [w.name, w]));
  const genDir = join(root, "packages", "proto", "src", "gen");
  const violations = [];

  const scan = (files, workspace) => {
    for (const file of files) {
      const rel = relative(root, file);
      const test = isTestFile(rel);
      for (const spec of importsOf(readFileSync(file, "utf8"))) {
        const flag = (rule) => violations.push({ file: rel.split(sep).join("/"), specifier: spec, rule });
        if (spec.startsWith(".")) {
          const target = resolve(dirname(file), spec);
          const inGen = target === genDir || target.startsWith(genDir + sep);
          if (inGen && !file.startsWith(join(root, "packages", "proto") + sep)) {
            flag("generated code is imported only through @corral/proto's public entry, never by a path into src/gen");
            continue;
          }
          if (workspace && !target.startsWith(join(root, workspace.dir) + sep)) {
            const other = workspaces.find((w) => target.startsWith(join(root, w.dir) + sep));
            flag(
              other?.kind === "service" && workspace.kind === "service"
                ? "a service never imports another service (not even by a relative path): services meet over RPC"
                : `a relative path leaves ${workspace.dir}: import another workspace by its package name`,
            );
          }
          continue;
        }
        if (spec.startsWith("node:") || builtins.has(spec) || !workspace) {
          if (spec.startsWith("@corral/proto/src/gen") || spec.startsWith("@corral/proto/gen")) {
            flag("generated code is imported only through @corral/proto's public entry, never by a path into src/gen");
          }
          continue;
        }
        const pkg = packageName(spec);
        if (pkg === workspace.name) continue;
        const ours = byName.get(pkg);
        if (ours) {
          if (spec.startsWith("@corral/proto/src/") || spec.startsWith("@corral/proto/gen")) {
            flag("generated code is imported only through @corral/proto's public entry, never by a path into src/gen");
            continue;
          }
          const allowed = new Set(allowedInSource[workspace.kind] ?? []);
          if (test) for (const k of extraInTests) allowed.add(k);
          // However it is reached, a service never depends on another one.
          if (workspace.kind === "service" && ours.kind === "service") {
            flag("a service never imports another service: services meet over RPC");
            continue;
          }
          if (!allowed.has(ours.kind)) {
            flag(layerRule[workspace.kind] ?? `${workspace.name} may not import ${pkg}`);
            continue;
          }
        }
        if (workspace.dependencies.has(pkg)) continue;
        if (test && workspace.devDependencies.has(pkg)) continue;
        flag(
          workspace.devDependencies.has(pkg)
            ? `${pkg} is only a devDependency of ${workspace.dir}/package.json, but production code imports it`
            : `${pkg} is not declared in ${workspace.dir}/package.json (${test ? "devDependencies, for a test" : "dependencies"})`,
        );
      }
    }
  };

  for (const w of workspaces) scan(listSources(join(root, w.dir, "src")), w);
  // Outside the workspaces: only the rule on generated code applies.
  for (const dir of ["test", "examples", "scripts"]) scan(listSources(join(root, dir)), undefined);

  return violations.sort((a, b) => a.file.localeCompare(b.file) || a.specifier.localeCompare(b.specifier));
}

/** One line per violation: `file: imports "spec": rule`. */
export const formatViolation = (v) => `${v.file}: imports "${v.specifier}": ${v.rule}`;

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), ".."));
  const violations = checkImports(root);
  for (const v of violations) console.error(formatViolation(v));
  if (violations.length > 0) {
    console.error(`check-imports: ${violations.length} import(s) break the workspace rules (see scripts/check-imports.mjs)`);
    process.exit(1);
  }
  console.log("check-imports: every import follows the workspace rules");
}
