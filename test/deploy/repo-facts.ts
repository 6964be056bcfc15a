// What the deployment files must agree with, read from the code itself: the environment variables
// it reads, the services' default ports, the service folders, the gRPC services in proto/corral and
// which service folder mounts each.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "../..");

function walk(dir: string, keep: (file: string) => boolean): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === "node_modules") continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...walk(path, keep));
    else if (keep(path)) out.push(path);
  }
  return out;
}

function subfolders(dir: string): string[] {
  return readdirSync(join(repoRoot, dir)).filter((n) => statSync(join(repoRoot, dir, n)).isDirectory());
}

const isSource = (f: string) => f.endsWith(".ts") && !f.endsWith(".test.ts") && !f.endsWith(".d.ts");

/** The folders under services/ (what `corral serve <name>` can start). */
export function serviceFolders(): string[] {
  return subfolders("services").filter((n) => existsSync(join(repoRoot, "services", n, "package.json")));
}

/** Non-test TypeScript sources of the packages and services, as path → text. */
export function codeSources(): Map<string, string> {
  const files = [
    ...subfolders("packages").flatMap((p) => walk(join(repoRoot, "packages", p, "src"), isSource)),
    ...serviceFolders().flatMap((s) => walk(join(repoRoot, "services", s, "src"), isSource)),
  ];
  return new Map(files.map((f) => [relative(repoRoot, f), readFileSync(f, "utf8")]));
}

/**
 * Where the code reads environment variable `name` (`"NAME"` passed to the config helpers, or
 * `process.env.NAME`), as file paths; empty when nothing reads it.
 */
export function readersOfEnv(name: string, sources: Map<string, string> = codeSources()): string[] {
  const quoted = new RegExp(`["'\`]${name}["'\`]`);
  const member = new RegExp(`\\benv\\.${name}\\b`);
  return [...sources].filter(([, text]) => quoted.test(text) || member.test(text)).map(([file]) => file);
}

/** The default URL of each peer service in service-config.ts: variable → port. */
export function defaultServiceUrls(): Map<string, number> {
  const text = readFileSync(join(repoRoot, "packages/server-kit/src/service-config.ts"), "utf8");
  const out = new Map<string, number>();
  for (const m of text.matchAll(/envUrl\("(CORRAL_\w+_URL)",\s*"http:\/\/[^:"]+:(\d+)"/g)) {
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** `readServiceConfig(<port>)` in a service folder's sources: its default port, when its main is there. */
export function declaredDefaultPort(folder: string, sources: Map<string, string> = codeSources()): number | undefined {
  const prefix = `services/${folder}/src/`;
  for (const [file, text] of sources) {
    if (!file.startsWith(prefix)) continue;
    const m = /readServiceConfig\((\d+)\)/.exec(text);
    if (m) return Number(m[1]);
  }
  return undefined;
}

export interface ProtoService {
  pkg: string;
  name: string;
  /** `corral.jobs.v1.JobService` */
  fullName: string;
  file: string;
  /** Its RPC names, as declared. */
  methods: string[];
}

/** Every `service X {` in proto/corral/**, with its package. */
export function protoServices(): ProtoService[] {
  const files = walk(join(repoRoot, "proto/corral"), (f) => f.endsWith(".proto"));
  return files.flatMap((file) => {
    const text = readFileSync(file, "utf8");
    const pkg = /^package\s+([\w.]+)\s*;/m.exec(text)?.[1];
    if (pkg === undefined) throw new Error(`${file}: no package`);
    return [...text.matchAll(/^service\s+(\w+)\s*\{([^}]*)\}/gm)].map((m) => ({
      pkg,
      name: m[1]!,
      fullName: `${pkg}.${m[1]!}`,
      file: relative(repoRoot, file),
      methods: [...m[2]!.matchAll(/^\s*rpc\s+(\w+)\s*\(/gm)].map((r) => r[1]!),
    }));
  });
}

/** The service folders whose sources mount `serviceName` (`{ service: XService, impl }`). */
export function mountingFolders(serviceName: string, sources: Map<string, string> = codeSources()): string[] {
  const mount = new RegExp(`\\bservice:\\s*${serviceName}\\b`);
  const out = new Set<string>();
  for (const [file, text] of sources) {
    const m = /^services\/([^/]+)\//.exec(file);
    if (m && mount.test(text)) out.add(m[1]!);
  }
  return [...out];
}

/** The text of the object literal around `index` (from its `{` to the matching `}`). */
function enclosingObject(text: string, index: number): string {
  let depth = 0;
  let start = index;
  for (; start > 0; start--) {
    const c = text[start];
    if (c === "}") depth++;
    else if (c === "{" && depth-- === 0) break;
  }
  depth = 0;
  for (let end = start; end < text.length; end++) {
    const c = text[end];
    if (c === "{") depth++;
    else if (c === "}" && --depth === 0) return text.slice(start, end + 1);
  }
  return text.slice(start);
}

/**
 * The RPC paths only the service key may call, from the services' mounts
 * (`{ service: X, impl, internal: true | ["Method"] }`): `/<full service>/<Method>` for each internal
 * method, and `/<full service>/` for a wholly internal service.
 */
export function internalRpcPaths(sources: Map<string, string> = codeSources(), protos: ProtoService[] = protoServices()): string[] {
  const out = new Set<string>();
  for (const [file, text] of sources) {
    if (!file.startsWith("services/")) continue;
    for (const m of text.matchAll(/\bservice:\s*(\w+Service)\b/g)) {
      const internal = /\binternal:\s*(true|\[[^\]]*\])/.exec(enclosingObject(text, m.index))?.[1];
      if (internal === undefined) continue;
      const proto = protos.find((p) => p.name === m[1]);
      if (!proto) throw new Error(`${file}: mounts ${m[1]}, which no proto/corral file declares`);
      if (internal === "true") out.add(`/${proto.fullName}/`);
      else for (const rpc of internal.matchAll(/["'](\w+)["']/g)) out.add(`/${proto.fullName}/${rpc[1]!}`);
    }
  }
  return [...out];
}

export function readRepoFile(path: string): string {
  return readFileSync(join(repoRoot, path), "utf8");
}

export function repoFileExists(path: string): boolean {
  return existsSync(join(repoRoot, path));
}
