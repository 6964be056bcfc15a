// Validates deploy/ without a Docker engine or a Kubernetes cluster: parses the Dockerfile, the
// compose file, the gateway config and every manifest, renders the kustomize overlays, and checks
// them against what the code reads (environment variables, default ports, service folders, the
// gRPC services in proto/corral, the broker's Redis key layout).
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { ConfigError, parseApiKey, parseDurationMs, readServiceConfig } from "@corral/server-kit";
import { startTestServer, type TestServer } from "@corral/server-kit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { backlogUrl } from "../../packages/cli/src/cluster-manifests.js";
import { MIN_INSTALLED_SECRET_LENGTH } from "../../services/cluster-registry/src/api-keys.js";
import { bootstrapKeyProblem } from "../../services/cluster-registry/src/component.js";
import { dockerIgnored, parseDockerfile, stage, type Instruction } from "./dockerfile.js";
import {
  containersOf,
  isObject,
  objectId,
  podSpec,
  readYamlDocuments,
  renderKustomization,
  type Json,
  type JsonObject,
  type K8sObject,
} from "./kustomize.js";
import {
  codeSources,
  declaredDefaultPort,
  defaultServiceUrls,
  internalRpcPaths,
  mountingFolders,
  protoServices,
  readersOfEnv,
  readRepoFile,
  repoFileExists,
  repoRoot,
  serviceFolders,
} from "./repo-facts.js";

const run = promisify(execFile);
const sources = codeSources();
const folders = serviceFolders();
const protos = protoServices();
const rootPackage = JSON.parse(readRepoFile("package.json")) as { version: string; scripts: Record<string, string> };

/** The service folder that mounts each proto service (exactly one, or the check below fails). */
function ownerOf(fullName: string): string {
  const svc = protos.find((p) => p.fullName === fullName)!;
  const owners = mountingFolders(svc.name, sources);
  if (owners.length !== 1) throw new Error(`${fullName} is mounted by ${owners.length} service folders: ${owners.join(", ")}`);
  return owners[0]!;
}

/** Every RPC path of proto/corral, with whether only the service key may call it. */
const internalPaths = internalRpcPaths(sources, protos);
const rpcPaths = protos.flatMap((svc) =>
  svc.methods.map((method) => {
    const path = `/${svc.fullName}/${method}`;
    return { svc, path, internal: internalPaths.some((p) => (p.endsWith("/") ? path.startsWith(p) : path === p)) };
  }),
);

/** A secret the registry would install as the bootstrap key: the API key format with a long enough secret. */
function expectInstallableKey(key: string, where: string): void {
  const parsed = parseApiKey(key);
  expect(parsed, `${where}: corral_<id>_<secret>`).toBeDefined();
  expect(parsed!.secret.length, `${where}: the registry's minimum secret length`).toBeGreaterThanOrEqual(MIN_INSTALLED_SECRET_LENGTH);
}

function expectReadByCode(names: Iterable<string>, where: string): void {
  const unread = [...new Set(names)].filter((n) => readersOfEnv(n, sources).length === 0);
  expect(unread, `${where} sets variables no code reads`).toEqual([]);
}

// ---------------------------------------------------------------------------------------------
// Dockerfile

const dockerfile = parseDockerfile(readRepoFile("deploy/Dockerfile"));
const ignoreRules = readRepoFile("deploy/Dockerfile.dockerignore");
const runtime = dockerfile.stages[dockerfile.stages.length - 1]!;
const ops = (op: string): Instruction[] => runtime.instructions.filter((i) => i.op === op);
const workdir = ops("WORKDIR").at(-1)!.words[0]!;

/**
 * Where a path inside the image comes from in the repository, following the runtime stage's COPYs
 * from the build context (Docker's rules: a folder's contents land in the destination; files land
 * at the destination, or inside it when it ends with "/" or there are several sources).
 */
function imagePathToRepo(imagePath: string): string | undefined {
  for (const copy of ops("COPY")) {
    if (copy.flags.from !== undefined) continue;
    const dest = copy.words.at(-1)!;
    const srcs = copy.words.slice(0, -1);
    const destAbs = dest.startsWith("/") ? dest : join(workdir, dest);
    const into = dest.endsWith("/") || srcs.length > 1;
    for (const src of srcs) {
      if (statSync(join(repoRoot, src)).isDirectory()) {
        if (imagePath.startsWith(`${destAbs.replace(/\/$/, "")}/`)) {
          return join(src, imagePath.slice(destAbs.replace(/\/$/, "").length + 1));
        }
      } else if (imagePath === (into ? join(destAbs, basename(src)) : destAbs)) return src;
    }
  }
  return undefined;
}

describe("deploy/Dockerfile", () => {
  it("builds on node:20-slim, runs as a numeric non-root user, enters through `corral` under tini", () => {
    expect(runtime.base).toBe("node:20-slim");
    const user = ops("USER").at(-1)!.words[0]!;
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user.split(":")[0])).toBeGreaterThan(0);
    const entry = ops("ENTRYPOINT").at(-1)!.words;
    expect(entry).toEqual(["tini", "--", "corral"]);
    expect(imagePathToRepo("/usr/local/bin/corral")).toBe("deploy/bin/corral");
  });

  it("runs the CLI package's bin, which loads tsx and the entry `npm start` runs", () => {
    const wrapper = readRepoFile("deploy/bin/corral");
    const m = /exec node (\S+) "\$@"/.exec(wrapper);
    expect(m, "deploy/bin/corral execs node on the CLI's bin").not.toBeNull();
    const cli = JSON.parse(readRepoFile("packages/cli/package.json")) as { bin: Record<string, string> };
    const bin = join("packages/cli", cli.bin.corral!);
    expect(m![1]).toBe(join(workdir, bin));
    expect(imagePathToRepo(m![1]!)).toBe(bin);
    const binText = readRepoFile(bin);
    // The bin registers tsx (copied from the loader stage, checked below) and imports the CLI entry.
    expect(binText).toMatch(/from "tsx\//);
    const entry = /import\("([^"]+)"\)/.exec(binText)![1]!;
    const startEntry = /tsx (\S+)/.exec(rootPackage.scripts.start!)![1]!;
    expect(join(dirname(bin), entry)).toBe(startEntry);
    expect(repoFileExists(startEntry)).toBe(true);
  });

  it("copies tsx's whole dependency closure from the full install, at lockfile versions", () => {
    const lock = JSON.parse(readRepoFile("package-lock.json")) as {
      packages: Record<string, { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> }>;
    };
    const copied = ops("COPY")
      .filter((c) => c.flags.from === "loader")
      .map((c) => c.words[0]!.replace(/^\/app\//, ""));
    const needed = new Set<string>();
    const visit = (name: string) => {
      if (needed.has(name)) return;
      needed.add(name);
      const entry = lock.packages[`node_modules/${name}`];
      expect(entry, `${name} in package-lock.json`).toBeDefined();
      for (const dep of Object.keys(entry!.dependencies ?? {})) visit(dep);
      // Optional platform packages (@esbuild/linux-x64, ...): their scope folder must come along.
      for (const dep of Object.keys(entry!.optionalDependencies ?? {})) {
        if (dep.startsWith("@")) expect(copied).toContain(`node_modules/${dep.split("/")[0]}`);
      }
    };
    visit("tsx");
    for (const name of needed) expect(copied).toContain(`node_modules/${name}`);
    // Nothing from a workspace's own node_modules would reach the image (only /app/node_modules is copied).
    const nested = Object.keys(lock.packages).filter((k) => /^(packages|services)\/[^/]+\/node_modules\//.test(k));
    expect(nested).toEqual([]);
  });

  it("copies only files that exist and that the Dockerfile's .dockerignore lets into the context", () => {
    const contextCopies = dockerfile.stages.flatMap((s) => s.instructions).filter((i) => i.op === "COPY" && i.flags.from === undefined);
    expect(contextCopies.length).toBeGreaterThan(0);
    for (const copy of contextCopies) {
      for (const src of copy.words.slice(0, -1)) {
        expect(repoFileExists(src), `${src} exists`).toBe(true);
        expect(dockerIgnored(ignoreRules, src), `${src} is in the build context`).toBe(false);
      }
    }
    // Every workspace manifest reaches the install stages; node_modules and tests stay out.
    for (const f of folders) expect(dockerIgnored(ignoreRules, `services/${f}/package.json`)).toBe(false);
    expect(dockerIgnored(ignoreRules, "packages/sdk/src/index.ts")).toBe(false);
    expect(dockerIgnored(ignoreRules, "packages/sdk/node_modules/x/index.js")).toBe(true);
    expect(dockerIgnored(ignoreRules, "node_modules/tsx/package.json")).toBe(true);
    expect(dockerIgnored(ignoreRules, "services/task-broker/src/broker.test.ts")).toBe(true);
    // The stage that collects workspace manifests copies every workspace root.
    const manifestSources = stage(dockerfile, "manifests").instructions.filter((i) => i.op === "COPY").map((i) => i.words[0]);
    for (const ws of ["packages", "services"]) expect(manifestSources).toContain(ws);
  });

  it("sets only variables the code reads, exposes the services' default ports and health-checks /healthz", () => {
    expectReadByCode(ops("ENV").map((e) => e.words[0]!.split("=")[0]!), "Dockerfile ENV");
    const exposed = ops("EXPOSE").flatMap((e) => e.words.map(Number)).sort();
    expect(exposed).toEqual([...defaultServiceUrls().values()].sort());
    const hc = ops("HEALTHCHECK").at(-1)!;
    const cmd = JSON.parse(/CMD\s+(\[.*\])/.exec(hc.args)![1]!) as string[];
    expect(cmd[0]).toBe("node");
    expect(imagePathToRepo(cmd[1]!)).toBe("deploy/healthcheck.mjs");
  });
});

describe("the health checks the deployments use, against a real server", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ mounts: [], name: "deploy-health" });
  });
  afterAll(async () => {
    await server?.close();
  });

  const healthcheck = async (port: number) => {
    try {
      await run(process.execPath, [join(repoRoot, "deploy/healthcheck.mjs")], { env: { ...process.env, PORT: String(port) } });
      return 0;
    } catch (err) {
      return (err as { code?: number }).code;
    }
  };

  // What Kubernetes' native gRPC probe sends: grpc.health.v1.Health/Check with service "".
  const grpcProbe = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
      client.makeUnaryRequest(
        "/grpc.health.v1.Health/Check",
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
        (err, res) => {
          client.close();
          if (err) reject(err);
          // HealthCheckResponse { status = 1 }: field 1 varint, absent means UNKNOWN (0).
          else resolve(res && res.length >= 2 && res[0] === 0x08 ? res[1]! : 0);
        },
      );
    });

  it("the image HEALTHCHECK passes on a serving server and fails on a draining one", async () => {
    expect(await healthcheck(server.port)).toBe(0);
    expect(await grpcProbe(server.port)).toBe(1); // SERVING
    server.server.setServing(false);
    try {
      expect(await healthcheck(server.port)).toBe(1);
      expect(await grpcProbe(server.port)).toBe(2); // NOT_SERVING
    } finally {
      server.server.setServing(true);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// compose.yaml and its gateway

/**
 * Compose's `${VAR:-default}` / `${VAR-default}` / `${VAR:?error}` / `${VAR}` / `$$` with these
 * variables set; a required variable that is missing throws its error, as compose stops with it.
 */
function interpolate(v: Json, vars: Record<string, string> = {}): Json {
  if (typeof v === "string") {
    return v.replace(/\$\$|\$\{(\w+)(?:(:?-|:?\?)([^}]*))?\}/g, (all, name: string, op: string | undefined, arg: string | undefined) => {
      if (all === "$$") return "$";
      const value = vars[name];
      if (op?.endsWith("?")) {
        if (value === undefined || value === "") throw new Error(`required variable ${name} is missing: ${arg ?? ""}`);
        return value;
      }
      return value !== undefined && value !== "" ? value : (arg ?? "");
    });
  }
  if (Array.isArray(v)) return v.map((x) => interpolate(x, vars));
  if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, interpolate(x, vars)]));
  return v;
}

/** The variables deploy/compose-secrets.sh writes, run for real into a scratch file. */
function generatedSecrets(): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), "corral-compose-"));
  try {
    const file = join(dir, ".env");
    execFileSync("sh", [join(repoRoot, "deploy/compose-secrets.sh"), file], { stdio: "ignore" });
    expect(statSync(file).mode & 0o777, "the secrets file is its owner's only").toBe(0o600);
    const vars: Record<string, string> = {};
    for (const line of readFileSync(file, "utf8").split("\n")) {
      const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
      if (m) vars[m[1]!] = m[2]!;
    }
    return vars;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const composeText = parse(readRepoFile("deploy/compose.yaml"), { merge: true }) as Json;
const secrets = generatedSecrets();
const compose = interpolate(composeText, secrets) as {
  services: Record<string, JsonObject>;
};

function envOf(service: JsonObject): Record<string, string> {
  const env = service.environment;
  if (Array.isArray(env)) return Object.fromEntries(env.map((e) => String(e).split(/=(.*)/s).slice(0, 2) as [string, string]));
  return Object.fromEntries(Object.entries((env ?? {}) as JsonObject).map(([k, v]) => [k, String(v)]));
}

const ourImage = (s: JsonObject) => isObject(s.build) && s.build.dockerfile === "deploy/Dockerfile";
const composeServices = Object.entries(compose.services).filter(([, s]) => ourImage(s));
const servedBy = (command: Json) => (Array.isArray(command) && command[0] === "serve" ? String(command[1]) : undefined);

function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  const port = u.port !== "" ? Number(u.port) : { "http:": 80, "https:": 443, "redis:": 6379, "postgres:": 5432 }[u.protocol]!;
  return { host: u.hostname, port };
}

/** The service folder a URL reaches through compose: its host is the compose service. */
function composeTarget(url: string): { folder: string | undefined; port: number; service: JsonObject | undefined } {
  const { host, port } = hostPort(url);
  const service = compose.services[host];
  return { folder: service ? servedBy(service.command as Json) : undefined, port, service };
}

describe("deploy/compose.yaml", () => {
  it("serves every service folder exactly once, each on its default port", () => {
    const served = composeServices.map(([, s]) => servedBy(s.command as Json)).filter((x) => x !== undefined);
    expect([...served].sort()).toEqual([...folders].sort());
    for (const [name, s] of composeServices) {
      const folder = servedBy(s.command as Json);
      if (folder === undefined) continue;
      const env = envOf(s);
      const declared = declaredDefaultPort(folder, sources);
      if (declared !== undefined) expect(Number(env.PORT ?? declared), name).toBe(declared);
      const published = (s.ports as string[]).map((p) => Number(p.split(":").at(-1)));
      expect(published, name).toContain(Number(env.PORT));
    }
  });

  it("points each peer URL at the compose service that serves it, on the code's default port", () => {
    const defaults = defaultServiceUrls();
    expect(defaults.size).toBe(folders.length);
    const reached = new Set<string>();
    for (const [, s] of composeServices.filter(([, s]) => servedBy(s.command as Json))) {
      const env = envOf(s);
      for (const [variable, port] of defaults) {
        const target = composeTarget(env[variable]!);
        expect(target.folder, `${variable} reaches a Corral service`).toBeDefined();
        expect(target.port, variable).toBe(port);
        expect(Number(envOf(target.service!).PORT), variable).toBe(port);
        const declared = declaredDefaultPort(target.folder!, sources);
        if (declared !== undefined) expect(declared, variable).toBe(port);
        reached.add(target.folder!);
      }
      expect(hostPort(env.DATABASE_URL!).host).toBe("postgres");
      expect(hostPort(env.REDIS_URL!).host).toBe("redis");
      // The configuration the services read from this environment is valid.
      expect(() => readServiceConfig(Number(env.PORT), env)).not.toThrow();
    }
    expect([...reached].sort()).toEqual([...folders].sort());
  });

  it("sets only variables the code reads, and bootstrap and runner keys of the API key format", () => {
    for (const [name, s] of composeServices) expectReadByCode(Object.keys(envOf(s)), `compose service ${name}`);
    const registry = composeServices.find(([, s]) => envOf(s).CORRAL_BOOTSTRAP_KEY !== undefined);
    expect(registry).toBeDefined();
    expectInstallableKey(envOf(registry![1]).CORRAL_BOOTSTRAP_KEY!, "compose CORRAL_BOOTSTRAP_KEY");
    expect(bootstrapKeyProblem(envOf(registry![1]).CORRAL_BOOTSTRAP_KEY!)).toBeUndefined();
  });

  it("ships no secret: each is a required variable that deploy/compose-secrets.sh makes at random", () => {
    // Without the generated file compose stops, naming the script.
    expect(() => interpolate(composeText, {})).toThrow(/compose-secrets\.sh/);
    expectInstallableKey(secrets.CORRAL_API_KEY!, "generated CORRAL_API_KEY");
    expect(secrets.CORRAL_SERVICE_KEY!.length).toBeGreaterThanOrEqual(32);
    expect(secrets.POSTGRES_PASSWORD!.length).toBeGreaterThanOrEqual(24);
    // A second run makes other values.
    const again = generatedSecrets();
    for (const name of ["CORRAL_API_KEY", "CORRAL_SERVICE_KEY", "POSTGRES_PASSWORD"]) expect(again[name], name).not.toBe(secrets[name]);
    // Every secret in the stack is the generated one, never a value written in compose.yaml.
    for (const [name, s] of composeServices) {
      const env = envOf(s);
      if (env.CORRAL_SERVICE_KEY !== undefined) expect(env.CORRAL_SERVICE_KEY, name).toBe(secrets.CORRAL_SERVICE_KEY);
      if (env.CORRAL_BOOTSTRAP_KEY !== undefined) expect(env.CORRAL_BOOTSTRAP_KEY, name).toBe(secrets.CORRAL_API_KEY);
      if (env.CORRAL_API_KEY !== undefined) expect(env.CORRAL_API_KEY, name).toBe(secrets.CORRAL_API_KEY);
      if (env.DATABASE_URL !== undefined) expect(new URL(env.DATABASE_URL).password, name).toBe(secrets.POSTGRES_PASSWORD);
    }
    expect(envOf(compose.services.postgres!).POSTGRES_PASSWORD).toBe(secrets.POSTGRES_PASSWORD);
  });

  it("starts a runner with an existing tasks module, talking to the broker", () => {
    const runners = composeServices.filter(([, s]) => Array.isArray(s.command) && s.command[0] === "runner");
    expect(runners.length).toBeGreaterThan(0);
    for (const [name, s] of runners) {
      const args = s.command as string[];
      expect(args.slice(0, 2)).toEqual(["runner", "start"]);
      const tasks = args[args.indexOf("--tasks") + 1]!;
      expect(repoFileExists(imagePathToRepo(tasks) ?? "-"), `${name}: ${tasks} is in the image`).toBe(true);
      expect(Number(args[args.indexOf("--concurrency") + 1])).toBeGreaterThan(0);
      const env = envOf(s);
      const target = composeTarget(env.CORRAL_URL!);
      expect(target.folder).toBe(ownerOf("corral.broker.v1.TaskBrokerService"));
      expect(parseApiKey(env.CORRAL_API_KEY!)).toBeDefined();
    }
  });

  it("waits on health: every service_healthy dependency has a health check, every dependency has a condition", () => {
    for (const [name, s] of Object.entries(compose.services)) {
      if (s.depends_on === undefined) continue;
      expect(isObject(s.depends_on), `${name}: depends_on with conditions`).toBe(true);
      for (const [dep, spec] of Object.entries(s.depends_on as JsonObject)) {
        expect(compose.services[dep], `${name} depends on ${dep}`).toBeDefined();
        expect((spec as JsonObject).condition).toBe("service_healthy");
        const hc = compose.services[dep]!.healthcheck as JsonObject | undefined;
        expect(hc && hc.disable !== true && Array.isArray(hc.test), `${dep} has a health check`).toBe(true);
      }
    }
    // Services in our image check /healthz with the image's script.
    for (const [name, s] of composeServices.filter(([, s]) => servedBy(s.command as Json))) {
      const test = (s.healthcheck as JsonObject).test as string[];
      expect(imagePathToRepo(test.at(-1)!), name).toBe("deploy/healthcheck.mjs");
      expect(parseDurationMs(String(s.stop_grace_period))).toBeGreaterThan(parseDurationMs(envOf(s).CORRAL_SHUTDOWN_GRACE ?? "10s")!);
    }
  });

  it("the gateway routes every public RPC of proto/corral to the service that mounts it, and no internal one", () => {
    const gateway = Object.values(compose.services).find((s) => String(s.image).startsWith("envoyproxy/envoy"));
    expect(gateway).toBeDefined();
    const mount = (gateway!.volumes as string[]).find((v) => v.endsWith(":/etc/envoy/envoy.yaml:ro"))!;
    const envoy = readYamlDocuments(join(repoRoot, "deploy", mount.split(":")[0]!))[0] as JsonObject;
    const resources = envoy.static_resources as { listeners: JsonObject[]; clusters: JsonObject[] };
    const hcm = (((resources.listeners[0]!.filter_chains as JsonObject[])[0]!.filters as JsonObject[])[0]!.typed_config) as JsonObject;
    const routes = ((hcm.route_config as JsonObject).virtual_hosts as JsonObject[]).flatMap((vh) => vh.routes as JsonObject[]);
    // The gateway publishes its listener where clients are told to connect (CORRAL_PUBLIC_URL).
    const listenPort = Number(((resources.listeners[0]!.address as JsonObject).socket_address as JsonObject).port_value);
    const published = (gateway!.ports as string[]).map((p) => p.split(":").map(Number).slice(-2) as [number, number]);
    for (const [, s] of composeServices.filter(([, s]) => servedBy(s.command as Json))) {
      const publicPort = hostPort(envOf(s).CORRAL_PUBLIC_URL!).port;
      expect(published).toContainEqual([publicPort, listenPort]);
    }
    expect(rpcPaths.filter((r) => r.internal).length, "internal RPCs found in the code").toBeGreaterThanOrEqual(4);
    for (const { svc, path, internal } of rpcPaths) {
      // Envoy: `path` matches exactly, `prefix` as a plain string prefix; the first matching route wins.
      const route = routes.find((r) => {
        const m = r.match as JsonObject;
        return m.path !== undefined ? path === m.path : path.startsWith(String(m.prefix));
      });
      if (internal) {
        expect(route?.route, `${path} is internal: not routed by the public gateway`).toBeUndefined();
        continue;
      }
      expect(route, `a route for ${path}`).toBeDefined();
      expect((route!.route as JsonObject).timeout, "streams have no route deadline").toBe("0s");
      const cluster = resources.clusters.find((c) => c.name === (route!.route as JsonObject).cluster)!;
      expect(cluster, `cluster ${String((route!.route as JsonObject).cluster)}`).toBeDefined();
      const protocol = cluster.typed_extension_protocol_options as JsonObject;
      expect(JSON.stringify(protocol)).toContain("http2_protocol_options");
      const endpoints = (cluster.load_assignment as { endpoints: { lb_endpoints: { endpoint: { address: { socket_address: JsonObject } } }[] }[] })
        .endpoints.flatMap((e) => e.lb_endpoints.map((l) => l.endpoint.address.socket_address));
      for (const ep of endpoints) {
        const target = composeTarget(`http://${String(ep.address)}:${String(ep.port_value)}`);
        expect(target.folder, svc.fullName).toBe(ownerOf(svc.fullName));
        expect(Number(envOf(target.service!).PORT)).toBe(Number(ep.port_value));
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Kubernetes

const overlays = { base: "deploy/k8s/base", production: "deploy/k8s/overlays/production" } as const;
const rendered = Object.fromEntries(
  Object.entries(overlays).map(([k, dir]) => [k, renderKustomization(join(repoRoot, dir))]),
) as Record<keyof typeof overlays, K8sObject[]>;

const ofKind = (objs: K8sObject[], kind: string) => objs.filter((o) => o.kind === kind);
const named = (objs: K8sObject[], kind: string, name: string) => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name}`);
  return o;
};

function selects(selector: JsonObject, labels: JsonObject): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

function templateLabels(d: K8sObject): JsonObject {
  return (((d.spec as JsonObject).template as JsonObject).metadata as JsonObject).labels as JsonObject;
}

/** The Deployment a Service selects: exactly one. */
function deploymentBehind(objs: K8sObject[], service: K8sObject): K8sObject {
  const selector = (service.spec as JsonObject).selector as JsonObject;
  const hits = ofKind(objs, "Deployment").filter((d) => selects(selector, templateLabels(d)));
  if (hits.length !== 1) throw new Error(`Service ${service.metadata.name} selects ${hits.length} Deployments`);
  return hits[0]!;
}

const args = (d: K8sObject) => (containersOf(d)[0]!.args as string[] | undefined) ?? [];
const serviceDeployments = (objs: K8sObject[]) => ofKind(objs, "Deployment").filter((d) => args(d)[0] === "serve");

/** The environment a container gets, with Secret and ConfigMap values resolved. */
function containerEnv(objs: K8sObject[], c: JsonObject): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of (c.envFrom as JsonObject[] | undefined) ?? []) {
    const ref = (from.configMapRef ?? from.secretRef) as JsonObject;
    const src = named(objs, from.configMapRef ? "ConfigMap" : "Secret", String(ref.name));
    Object.assign(env, (src.data ?? src.stringData) as JsonObject);
  }
  for (const e of (c.env as JsonObject[] | undefined) ?? []) {
    const vf = e.valueFrom as JsonObject | undefined;
    if (!vf) env[String(e.name)] = String(e.value);
    else {
      const ref = (vf.secretKeyRef ?? vf.configMapKeyRef) as JsonObject;
      const src = named(objs, vf.secretKeyRef ? "Secret" : "ConfigMap", String(ref.name));
      const data = (src.stringData ?? src.data) as JsonObject;
      expect(data[String(ref.key)], `${String(ref.name)} has key ${String(ref.key)}`).toBeDefined();
      env[String(e.name)] = String(data[String(ref.key)]);
    }
  }
  return env;
}

function replacePassword(url: string | undefined, password: string): string | undefined {
  if (url === undefined) return undefined;
  const u = new URL(url);
  u.password = password;
  return u.toString();
}

/** The Service and Deployment a cluster-internal URL reaches. */
function k8sTarget(objs: K8sObject[], url: string): { service: K8sObject; deployment: K8sObject; port: number } {
  const { host, port } = hostPort(url);
  const service = named(objs, "Service", host.split(".")[0]!);
  const ports = (service.spec as JsonObject).ports as JsonObject[];
  expect(ports.map((p) => p.port), `Service ${host} has port ${port}`).toContain(port);
  return { service, deployment: deploymentBehind(objs, service), port };
}

// Kubernetes quantities (YAML may give a plain number).
const cpu = (q: string | number) => (String(q).endsWith("m") ? Number(String(q).slice(0, -1)) / 1000 : Number(q));
const memory = (q: string | number) => {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti)?$/.exec(String(q));
  if (!m) throw new Error(`memory quantity ${q}`);
  return Number(m[1]) * 1024 ** ["", "Ki", "Mi", "Gi", "Ti"].indexOf(m[2] ?? "");
};

for (const [overlay, objs] of Object.entries(rendered) as [keyof typeof overlays, K8sObject[]][]) {
  describe(`deploy/k8s ${overlay}`, () => {
    it("renders uniquely identified objects, all in one namespace", () => {
      const ids = objs.map(objectId);
      expect(new Set(ids).size).toBe(ids.length);
      const namespace = ofKind(objs, "Namespace")[0]!.metadata.name;
      for (const o of objs.filter((x) => x.kind !== "Namespace")) expect(o.metadata.namespace, objectId(o)).toBe(namespace);
    });

    it("runs every service folder once, on its default port, with gRPC probes on that port", () => {
      const deployments = serviceDeployments(objs);
      expect(deployments.map((d) => args(d)[1]).sort()).toEqual([...folders].sort());
      const defaults = new Set(defaultServiceUrls().values());
      for (const d of deployments) {
        const c = containersOf(d)[0]!;
        const folder = args(d)[1]!;
        const port = Number(((c.ports as JsonObject[])[0]!).containerPort);
        expect(defaults.has(port), `${folder} listens on a default port`).toBe(true);
        const env = containerEnv(objs, c);
        expect(Number(env.PORT ?? port)).toBe(port);
        const declared = declaredDefaultPort(folder, sources);
        if (declared !== undefined) expect(port).toBe(declared);
        for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
          const grpcProbe = (c[probe] as JsonObject | undefined)?.grpc as JsonObject | undefined;
          expect(grpcProbe, `${folder} ${probe} is a gRPC probe`).toBeDefined();
          expect(Number(grpcProbe!.port)).toBe(port);
          expect(grpcProbe!.service ?? "").toBe("");
        }
        // Drains within the grace period Kubernetes gives it.
        const grace = Number(podSpec(d)!.terminationGracePeriodSeconds) * 1000;
        expect(grace).toBeGreaterThan(parseDurationMs(env.CORRAL_SHUTDOWN_GRACE ?? "10s")! + 5_000);
        // Services in a container listen on every interface.
        expect(env.HOST).toBe("0.0.0.0");
        // Valid once the Secret's placeholders are replaced (as shipped they are refused: see below).
        const filled = {
          ...env,
          CORRAL_SERVICE_KEY: secrets.CORRAL_SERVICE_KEY!,
          DATABASE_URL: replacePassword(env.DATABASE_URL, secrets.POSTGRES_PASSWORD!),
          REDIS_URL: replacePassword(env.REDIS_URL, secrets.POSTGRES_PASSWORD!),
        };
        expect(() => readServiceConfig(port, filled)).not.toThrow();
      }
    });

    it("Services, PDBs, HPAs and the ScaledObject select or target existing workloads", () => {
      for (const svc of ofKind(objs, "Service")) {
        const d = deploymentBehind(objs, svc);
        const c = containersOf(d)[0]!;
        for (const p of (svc.spec as JsonObject).ports as JsonObject[]) {
          const target = (c.ports as JsonObject[]).find((cp) => cp.name === p.targetPort || cp.containerPort === p.targetPort);
          expect(target, `${svc.metadata.name} targetPort`).toBeDefined();
          expect(target!.containerPort).toBe(p.port);
          expect(p.appProtocol).toBe("kubernetes.io/h2c");
        }
        // A Deployment's selector matches its own template.
        expect(selects(((d.spec as JsonObject).selector as JsonObject).matchLabels as JsonObject, templateLabels(d))).toBe(true);
      }
      const hpas = ofKind(objs, "HorizontalPodAutoscaler");
      const scaled = ofKind(objs, "ScaledObject");
      for (const d of serviceDeployments(objs)) {
        const pdb = ofKind(objs, "PodDisruptionBudget").filter((p) =>
          selects(((p.spec as JsonObject).selector as JsonObject).matchLabels as JsonObject, templateLabels(d)),
        );
        expect(pdb.length, `${d.metadata.name} has a PDB`).toBe(1);
        const hpa = hpas.filter((h) => ((h.spec as JsonObject).scaleTargetRef as JsonObject).name === d.metadata.name);
        expect(hpa.length, `${d.metadata.name} has an HPA`).toBe(1);
        const { minReplicas, maxReplicas } = hpa[0]!.spec as { minReplicas: number; maxReplicas: number };
        const replicas = Number((d.spec as JsonObject).replicas);
        expect(replicas).toBeGreaterThanOrEqual(minReplicas);
        expect(replicas).toBeLessThanOrEqual(maxReplicas);
        // The PDB must leave room to evict one pod at the HPA's minimum.
        expect(Number((pdb[0]!.spec as JsonObject).minAvailable)).toBeLessThan(minReplicas);
      }
      for (const so of scaled) {
        const target = named(objs, "Deployment", String(((so.spec as JsonObject).scaleTargetRef as JsonObject).name));
        // KEDA makes its own HPA: a second one would fight it.
        expect(hpas.filter((h) => ((h.spec as JsonObject).scaleTargetRef as JsonObject).name === target.metadata.name)).toEqual([]);
        for (const t of (so.spec as JsonObject).triggers as JsonObject[]) {
          const auth = t.authenticationRef as JsonObject | undefined;
          if (!auth) continue;
          const ta = named(objs, "TriggerAuthentication", String(auth.name));
          for (const ref of (ta.spec as JsonObject).secretTargetRef as JsonObject[]) {
            expect(((named(objs, "Secret", String(ref.name)).stringData as JsonObject) ?? {})[String(ref.key)]).toBeDefined();
          }
        }
      }
    });

    it("sets only variables the code reads; every container has requests, limits and a non-root user", () => {
      const uid = Number(ops("USER").at(-1)!.words[0]!.split(":")[0]);
      for (const d of ofKind(objs, "Deployment")) {
        const spec = podSpec(d)!;
        const sc = spec.securityContext as JsonObject;
        expect(sc.runAsNonRoot).toBe(true);
        expect(sc.runAsUser).toBe(uid);
        for (const c of containersOf(d)) {
          expectReadByCode(Object.keys(containerEnv(objs, c)), `${d.metadata.name}/${String(c.name)}`);
          const r = c.resources as { requests: Record<string, string>; limits: Record<string, string> };
          expect(cpu(r.requests.cpu!)).toBeLessThanOrEqual(cpu(r.limits.cpu!));
          expect(memory(r.requests.memory!)).toBeLessThanOrEqual(memory(r.limits.memory!));
          expect(String(c.image)).toMatch(new RegExp(`/corral:${rootPackage.version.replace(/\./g, "\\.")}$`));
          // A read-only root needs /tmp (tsx's compile cache) to be writable.
          expect((c.securityContext as JsonObject).readOnlyRootFilesystem).toBe(true);
          expect(((c.volumeMounts as JsonObject[]) ?? []).map((m) => m.mountPath)).toContain("/tmp");
        }
      }
      expect(parseApiKey(String((named(objs, "Secret", "corral-secrets").stringData as JsonObject).CORRAL_BOOTSTRAP_KEY))).toBeDefined();
    });

    it("ships only placeholder secrets, each of which the services refuse at start, naming the variable", () => {
      const secret = named(objs, "Secret", "corral-secrets").stringData as Record<string, string>;
      // The template's bootstrap key has the registry's shape and length, so a real one made like it fits.
      expectInstallableKey(secret.CORRAL_BOOTSTRAP_KEY!, "Secret CORRAL_BOOTSTRAP_KEY");
      expect(bootstrapKeyProblem(secret.CORRAL_BOOTSTRAP_KEY!)).toMatch(/^CORRAL_BOOTSTRAP_KEY: .*placeholder/);
      for (const name of ["CORRAL_SERVICE_KEY", "DATABASE_URL", "REDIS_URL"]) {
        const refusal = (() => {
          try {
            readServiceConfig(0, { [name]: secret[name]! });
            return undefined;
          } catch (err) {
            return err;
          }
        })();
        expect(refusal, `${name} as shipped`).toBeInstanceOf(ConfigError);
        expect((refusal as Error).message).toMatch(new RegExp(`^${name}: .*placeholder`));
      }
    });

    it("points each peer URL at the Service of the folder it names, on the code's default port", () => {
      const config = named(objs, "ConfigMap", "corral-config").data as Record<string, string>;
      const reached = new Set<string>();
      for (const [variable, port] of defaultServiceUrls()) {
        const target = k8sTarget(objs, config[variable]!);
        expect(target.port, variable).toBe(port);
        const folder = args(target.deployment)[1]!;
        const declared = declaredDefaultPort(folder, sources);
        if (declared !== undefined) expect(declared).toBe(port);
        reached.add(folder);
      }
      expect([...reached].sort()).toEqual([...folders].sort());
    });

    it("routes every public RPC of proto/corral through the Gateway to the service that mounts it, and no internal one", () => {
      const routes = ofKind(objs, "HTTPRoute");
      const gateways = ofKind(objs, "Gateway");
      for (const r of routes) {
        for (const ref of (r.spec as JsonObject).parentRefs as JsonObject[]) {
          expect(gateways.map((g) => g.metadata.name)).toContain(ref.name);
        }
      }
      const rules = routes.flatMap((r) => (r.spec as JsonObject).rules as JsonObject[]);
      expect(rpcPaths.filter((r) => r.internal).length, "internal RPCs found in the code").toBeGreaterThanOrEqual(4);
      for (const { svc, path, internal } of rpcPaths) {
        // Gateway API: Exact matches the whole path, PathPrefix whole path segments.
        const hits = rules.filter((rule) =>
          ((rule.matches as JsonObject[]) ?? []).some((m) => {
            const p = m.path as JsonObject;
            if (p.type === "Exact") return path === p.value;
            const prefix = String(p.value).replace(/\/$/, "");
            return p.type === "PathPrefix" && (path === prefix || path.startsWith(`${prefix}/`));
          }),
        );
        if (internal) {
          expect(hits, `${path} is internal: not routed by the public Gateway`).toEqual([]);
          continue;
        }
        expect(hits.length, `one route rule for ${path}`).toBe(1);
        const rule = hits[0]!;
        expect((rule.timeouts as JsonObject | undefined)?.request, "streams have no request deadline").toBe("0s");
        for (const b of rule.backendRefs as JsonObject[]) {
          const service = named(objs, "Service", String(b.name));
          const d = deploymentBehind(objs, service);
          expect(args(d)[1], svc.fullName).toBe(ownerOf(svc.fullName));
          expect(((service.spec as JsonObject).ports as JsonObject[]).map((p) => p.port)).toContain(b.port);
        }
      }
    });

    it("scales the runner Deployment with KEDA on its cluster's backlog, read from the broker with the runners' key", async () => {
      const so = ofKind(objs, "ScaledObject");
      expect(so.length).toBeGreaterThan(0);
      for (const scaled of so) {
        const runner = named(objs, "Deployment", String(((scaled.spec as JsonObject).scaleTargetRef as JsonObject).name));
        const c = containersOf(runner)[0]!;
        const a = c.args as string[];
        expect(a.slice(0, 2)).toEqual(["runner", "start"]);
        const annotations = runner.metadata.annotations as Record<string, string>;
        const slug = a[a.indexOf("--cluster") + 1]!;
        expect(slug).toBe(annotations["corral.dev/cluster-slug"]);
        const triggers = (scaled.spec as JsonObject).triggers as { type: string; metadata: Record<string, string>; authenticationRef: { name: string } }[];
        expect(triggers).toHaveLength(1);
        const t = triggers[0]!;
        expect(t.type).toBe("metrics-api");
        // GetClusterBacklog of the runners' cluster, on the broker, in Connect's GET form.
        const url = new URL(t.metadata.url!);
        expect(args(k8sTarget(objs, t.metadata.url!).deployment)[1]).toBe(ownerOf("corral.broker.v1.TaskBrokerService"));
        // KEDA runs in its own namespace: the Service's fully qualified name.
        expect(url.hostname.endsWith(".svc.cluster.local")).toBe(true);
        expect(t.metadata.url).toBe(backlogUrl(`${url.protocol}//${url.host}`, slug));
        expect(t.metadata.valueLocation).toBe("total");
        expect(Number(t.metadata.targetValue)).toBeGreaterThan(0);
        // The runners' own key, as a bearer token.
        expect(t.metadata.authMode).toBe("bearer");
        const auth = named(objs, "TriggerAuthentication", t.authenticationRef.name).spec as { secretTargetRef: JsonObject[] };
        const keyRef = (c.env as JsonObject[]).find((e) => e.name === "CORRAL_API_KEY")!.valueFrom as { secretKeyRef: JsonObject };
        expect(auth.secretTargetRef).toEqual([{ parameter: "token", name: keyRef.secretKeyRef.name, key: keyRef.secretKeyRef.key }]);
        // Runners reach the broker (the folder that mounts TaskBrokerService) with an API key.
        const env = containerEnv(objs, c);
        expect(args(k8sTarget(objs, env.CORRAL_URL!).deployment)[1]).toBe(ownerOf("corral.broker.v1.TaskBrokerService"));
        expect(parseApiKey(env.CORRAL_API_KEY!)).toBeDefined();
      }
    });
  });
}

describe("deploy/k8s production overlay", () => {
  const base = rendered.base;
  const prod = rendered.production;

  it("raises replicas, resources and autoscaling bounds over the base", () => {
    for (const d of serviceDeployments(prod)) {
      const b = named(base, "Deployment", d.metadata.name);
      expect(Number((d.spec as JsonObject).replicas)).toBeGreaterThan(Number((b.spec as JsonObject).replicas));
      const req = (o: K8sObject) => (containersOf(o)[0]!.resources as { requests: Record<string, string> }).requests;
      expect(cpu(req(d).cpu!)).toBeGreaterThan(cpu(req(b).cpu!));
      expect(memory(req(d).memory!)).toBeGreaterThanOrEqual(memory(req(b).memory!));
    }
    for (const h of ofKind(prod, "HorizontalPodAutoscaler")) {
      const b = named(base, "HorizontalPodAutoscaler", h.metadata.name).spec as JsonObject;
      expect(Number((h.spec as JsonObject).maxReplicas)).toBeGreaterThan(Number(b.maxReplicas));
      expect(Number((h.spec as JsonObject).minReplicas)).toBeGreaterThanOrEqual(Number(b.minReplicas));
    }
    for (const s of ofKind(prod, "ScaledObject")) {
      const b = named(base, "ScaledObject", s.metadata.name).spec as JsonObject;
      expect(Number((s.spec as JsonObject).maxReplicaCount)).toBeGreaterThan(Number(b.maxReplicaCount));
    }
  });

  it("terminates TLS on the Gateway for the host clients are told to use", () => {
    const publicUrl = new URL((named(prod, "ConfigMap", "corral-config").data as Record<string, string>).CORRAL_PUBLIC_URL!);
    expect(publicUrl.protocol).toBe("https:");
    const listeners = (named(prod, "Gateway", "corral").spec as JsonObject).listeners as JsonObject[];
    expect(listeners.length).toBeGreaterThan(0);
    for (const l of listeners) {
      expect(l.protocol).toBe("HTTPS");
      expect(l.hostname).toBe(publicUrl.hostname);
      expect(((l.tls as JsonObject).certificateRefs as JsonObject[]).length).toBeGreaterThan(0);
    }
    for (const r of ofKind(prod, "HTTPRoute")) expect((r.spec as JsonObject).hostnames).toEqual([publicUrl.hostname]);
  });
});

// kubectl, where installed, renders with the real kustomize: the TypeScript renderer must agree.
const kubectl = (() => {
  try {
    execFileSync("kubectl", ["version", "--client"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!kubectl)("the TypeScript render against `kubectl kustomize`", () => {
  for (const [overlay, dir] of Object.entries(overlays) as [keyof typeof overlays, string][]) {
    it(`${overlay} renders the same objects`, () => {
      const text = execFileSync("kubectl", ["kustomize", join(repoRoot, dir)], { encoding: "utf8" });
      const real = parseAllDocuments(text).map((d) => d.toJS() as K8sObject);
      const byId = (objs: K8sObject[]) => Object.fromEntries(objs.map((o) => [objectId(o), o]));
      expect(byId(rendered[overlay])).toEqual(byId(real));
    });
  }
});

// Guard against a silently empty check: the facts above come from the code.
describe("the facts the checks use", () => {
  it("finds the services' variables, ports, proto services and their mounts in the code", () => {
    expect(readersOfEnv("DATABASE_URL", sources).length).toBeGreaterThan(0);
    expect(defaultServiceUrls().size).toBe(folders.length);
    expect(protos.length).toBeGreaterThan(0);
    for (const p of protos) expect(() => ownerOf(p.fullName)).not.toThrow();
    expect(existsSync(join(repoRoot, "deploy/README.md"))).toBe(true);
  });
});
