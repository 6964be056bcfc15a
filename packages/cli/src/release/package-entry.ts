// The entry module of a task package: --entry, else package.json `exports` (its "." import/node/
// default target), else `main`, else index.{js,mjs,ts,mts}.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../exit-codes.js";

export interface PackageJson {
  name?: string;
  version?: string;
  main?: string;
  exports?: unknown;
  engines?: { node?: string };
}

export function readPackageJson(dir: string): PackageJson | undefined {
  const path = join(dir, "package.json");
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as PackageJson;
  } catch (err) {
    throw new UsageError(`${path}: not valid JSON (${(err as Error).message})`);
  }
}

/** The file an `exports` value points at for `import` from Node, if any. */
export function exportsTarget(exports: unknown): string | undefined {
  if (typeof exports === "string") return exports;
  if (Array.isArray(exports)) {
    for (const e of exports) {
      const t = exportsTarget(e);
      if (t !== undefined) return t;
    }
    return undefined;
  }
  if (typeof exports !== "object" || exports === null) return undefined;
  const map = exports as Record<string, unknown>;
  // A subpath map: only its root counts. Otherwise a condition map.
  if (Object.keys(map).some((k) => k.startsWith("."))) return "." in map ? exportsTarget(map["."]) : undefined;
  for (const condition of ["node", "import", "default"]) {
    if (condition in map) {
      const t = exportsTarget(map[condition]);
      if (t !== undefined) return t;
    }
  }
  return undefined;
}

/** The entry relative to `dir`. */
export function packageEntry(dir: string, pkg: PackageJson | undefined, explicit?: string): string {
  if (explicit !== undefined) {
    if (!existsSync(join(dir, explicit))) throw new UsageError(`--entry ${explicit}: no such file in ${dir}`);
    return explicit;
  }
  const declared = exportsTarget(pkg?.exports) ?? pkg?.main;
  if (declared !== undefined) {
    if (!existsSync(join(dir, declared))) throw new UsageError(`package.json names ${declared} as its entry, but ${dir} has no such file`);
    return declared;
  }
  for (const name of ["index.js", "index.mjs", "index.ts", "index.mts"]) if (existsSync(join(dir, name))) return name;
  throw new UsageError(`${dir}: no entry module (set "exports" or "main" in package.json, or pass --entry)`);
}
