// Releases end to end with real processes: the three services, an ingress routing by service path,
// `corral release ...` as a user runs it, and release runners as `corral runner start --cluster X`
// processes that load what is deployed (each release version in its own child process) without
// restarting. One suite for the whole file; each test goes on from where the previous one left.
import { execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ReleaseLoadState, TaskState } from "@corral/proto";
import { createDatabase } from "@corral/server-kit";
import { createApiKeys, REGISTRY_SCHEMA, type RegistryDatabase } from "@corral/cluster-registry";
import { Task, type Client } from "@corral/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBalancer, type Balancer } from "../scale/support/h2-balancer.js";
import { runCli, spawnCli } from "../support/cli.js";
import { releaseChildren } from "../support/release-children.js";
import { suiteClient, waitUntil } from "../support/clients.js";
import { startSuite, type Suite } from "../support/suite.js";

/** The deployed task as the test submits it; only the release runners' children run it. */
class Hello extends Task<{ hold?: string } | undefined> {
  static override identifier = { name: "e2e/Hello", version: "v1.0" };
  override execute(): never {
    throw new Error("runs only in a release");
  }
}

/**
 * A task package at `version`: its task says which version ran (through a `file:` dependency), and
 * with `hold` it appends "version pid" to `<hold>.started`, then waits for `<hold>.go` to exist.
 */
function writeHelloPackage(dir: string, version: string) {
  mkdirSync(join(dir, "ran-on"), { recursive: true });
  writeFileSync(join(dir, "ran-on/package.json"), JSON.stringify({ name: "ran-on", version: "1.0.0", main: "index.js" }));
  writeFileSync(join(dir, "ran-on/index.js"), 'exports.ranOn = (version) => "ran on " + version;\n');
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({ name: "@acme/hello", version, type: "module", main: "index.js", dependencies: { "ran-on": "file:./ran-on" } }),
  );
  writeFileSync(
    join(dir, "index.js"),
    `import { appendFileSync, existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { ranOn } from "ran-on";
import { Task } from "@corral/sdk";
const VERSION = ${JSON.stringify(version)};
export class Hello extends Task {
  static identifier = { name: "e2e/Hello", version: "v1.0" };
  async execute(ctx) {
    ctx.setDisplay(ranOn(VERSION));
    const hold = this.input?.hold;
    if (!hold) return;
    appendFileSync(hold + ".started", VERSION + " " + process.pid + "\\n");
    while (!existsSync(hold + ".go")) await sleep(50, undefined, { signal: ctx.signal });
  }
}
`,
  );
  mkdirSync(join(dir, "node_modules"), { recursive: true });
  execFileSync("ln", ["-sfn", "../ran-on", join(dir, "node_modules/ran-on")]);
}

interface RunnerProcess {
  id: string;
  child: ChildProcess;
  cacheDir: string;
  output(): string;
}

describe("releases end to end", { timeout: 150_000 }, () => {
  let suite: Suite;
  let ingress: Balancer;
  let client: Client;
  let work: string;
  let clusterA: { id: string; slug: string };
  let clusterB: { id: string; slug: string };
  let runnerA: RunnerProcess;
  let runnerB: RunnerProcess;
  const runners: RunnerProcess[] = [];
  const cli = (args: string[]) => runCli(args, { env: { CORRAL_URL: ingress.url, CORRAL_API_KEY: suite.apiKey } });

  function startReleaseRunner(id: string, cluster: string, apiKey: string): RunnerProcess {
    const cacheDir = join(work, `cache-${id}`);
    const child = spawnCli(["runner", "start", "--cluster", cluster, "--runner-id", id, "--concurrency", "4", "--drain-grace", "5"], {
      env: { CORRAL_URL: ingress.url, CORRAL_API_KEY: apiKey, CORRAL_CACHE_DIR: cacheDir },
    });
    let output = "";
    child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    const runner = { id, child, cacheDir, output: () => output };
    runners.push(runner);
    return runner;
  }

  const identifiersOf = async (runnerId: string) => (await client.nodes().find(runnerId)).identifiers.map((i) => `${i.name}@${i.version}`);
  /** The release statuses runner `runnerId` reported last, as `name@version state restarts`. */
  const statusOf = async (cluster: string, runnerId: string) =>
    (await client.releases().status({ cluster })).find((r) => r.runnerId === runnerId)?.releases ?? [];

  async function runHello(input?: { hold?: string }) {
    const job = await client.jobs().submit("hello", new Hello(input), { cluster: clusterA.slug });
    return job.id;
  }
  async function displayOf(jobId: string) {
    await client.jobs().wait(jobId);
    const [task] = await client.jobs().tasks(jobId);
    return task!.display;
  }

  beforeAll(async () => {
    suite = await startSuite({ label: "e2e-release-runners" });
    ingress = await startBalancer([
      { prefix: "/corral.registry.", backends: [suite.registry.url] },
      { prefix: "/corral.jobs.", backends: [suite.jobs.url] },
      { prefix: "/corral.broker.", backends: [suite.broker.url] },
    ]);
    client = suiteClient(suite);
    work = mkdtempSync(join(tmpdir(), "corral-releases-e2e-"));
    const a = await client.clusters().create("release a");
    const b = await client.clusters().create("release b");
    clusterA = { id: a.id, slug: a.slug };
    clusterB = { id: b.id, slug: b.slug };
    // Runner A works with a runner-scoped key, as a runner the provisioning agent launches does.
    const db = createDatabase<RegistryDatabase>({ url: suite.database.url, schema: REGISTRY_SCHEMA, max: 1 });
    try {
      const { key } = await createApiKeys(db).create(suite.teamId, "release runner a", clusterA.id);
      runnerA = startReleaseRunner("release-runner-a", clusterA.slug, key);
    } finally {
      await db.destroy();
    }
    runnerB = startReleaseRunner("release-runner-b", clusterB.slug, suite.apiKey);
  });
  afterAll(async () => {
    for (const r of runners) r.child.kill("SIGKILL");
    // Its children notice the runner's end (their IPC channel closes) and exit; do not leave any behind.
    for (const r of runners) for (const pid of releaseChildren(r.child.pid!).values()) process.kill(pid, "SIGKILL");
    await ingress?.close();
    await suite?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("a release runner started before anything is deployed connects advertising nothing", async () => {
    for (const r of [runnerA, runnerB]) {
      const node = await waitUntil(`node ${r.id}`, () => client.nodes().find(r.id).catch(() => undefined), 60_000);
      expect(node.identifiers, r.output()).toEqual([]);
    }
    expect(releaseChildren(runnerA.child.pid!).size).toBe(0);
  });

  it("publishes v1.0.0 with its dependency, deploys it, and the running runner advertises it without restarting", async () => {
    const pkg = join(work, "hello-1.0.0");
    writeHelloPackage(pkg, "1.0.0");
    const published = await cli(["release", "publish", pkg, "--json"]);
    expect(published.code, published.stderr).toBe(0);
    expect(JSON.parse(published.stdout)).toMatchObject({ release: { name: "hello", version: "1.0.0" }, created: true });
    const before = await client.nodes().find(runnerA.id);

    const deployed = await cli(["release", "deploy", "hello", "1.0.0", "--cluster", clusterA.slug]);
    expect(deployed.code, deployed.stderr).toBe(0);
    await waitUntil("runner A to advertise e2e/Hello", async () => (await identifiersOf(runnerA.id)).includes("e2e/Hello@v1.0"));

    const shown = await cli(["node", "get", runnerA.id, "--json"]);
    expect(shown.code, shown.stderr).toBe(0);
    expect((JSON.parse(shown.stdout) as { identifiers: unknown[] }).identifiers).toEqual([{ name: "e2e/Hello", version: "v1.0" }]);
    // The same process and the same Work stream session: the identifiers changed on the live stream.
    expect(runnerA.child.exitCode).toBeNull();
    const after = await client.nodes().find(runnerA.id);
    expect(after.sessionId).toBe(before.sessionId);
    expect([...releaseChildren(runnerA.child.pid!).keys()]).toEqual(["hello@1.0.0"]);
    await waitUntil("runner A's load report", async () =>
      (await statusOf(clusterA.slug, runnerA.id)).some((s) => s.version === "1.0.0" && s.state === ReleaseLoadState.LOADED),
    );
  });

  it("runs a job on v1.0.0 code", async () => {
    expect(await displayOf(await runHello())).toBe("ran on 1.0.0");
  });

  it("deploys v1.1.0 while a long v1.0.0 task runs: that task completes on v1.0.0, tasks after the deploy run v1.1.0", async () => {
    const hold = join(work, "long");
    const long = await runHello({ hold });
    await waitUntil("the long task to start", async () => existsSync(`${hold}.started`));

    const pkg = join(work, "hello-1.1.0");
    writeHelloPackage(pkg, "1.1.0");
    const published = await cli(["release", "publish", pkg]);
    expect(published.code, published.stderr).toBe(0);
    const deployed = await cli(["release", "deploy", "hello", "1.1.0", "--cluster", clusterA.slug]);
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(deployed.stdout).toContain("1.0.0");
    // v1.1.0 loaded next to v1.0.0, which holds the long task.
    await waitUntil("v1.1.0 loaded while v1.0.0 drains", async () => {
      const s = await statusOf(clusterA.slug, runnerA.id);
      return (
        s.some((r) => r.version === "1.1.0" && r.state === ReleaseLoadState.LOADED) &&
        s.some((r) => r.version === "1.0.0" && r.state === ReleaseLoadState.DRAINING)
      );
    });
    expect(await displayOf(await runHello())).toBe("ran on 1.1.0");
    expect((await client.jobs().tasks(long))[0]!.state).toBe(TaskState.RUNNING);

    writeFileSync(`${hold}.go`, "");
    expect(await displayOf(long)).toBe("ran on 1.0.0");
    // Its last task done, v1.0.0's process exits and the runner reports only v1.1.0.
    await waitUntil("v1.0.0's process to exit", async () => !releaseChildren(runnerA.child.pid!).has("hello@1.0.0"));
    await waitUntil("only v1.1.0 reported", async () => {
      const s = await statusOf(clusterA.slug, runnerA.id);
      return s.length === 1 && s[0]!.version === "1.1.0";
    });
    expect(runnerA.child.exitCode).toBeNull();
  });

  it("a release runner on another cluster never loads A's releases", async () => {
    expect(await identifiersOf(runnerB.id)).toEqual([]);
    expect(releaseChildren(runnerB.child.pid!).size).toBe(0);
    expect(await statusOf(clusterB.slug, runnerB.id)).toEqual([]);
    // Nothing of A's was ever downloaded there.
    const bundles = join(runnerB.cacheDir, "releases");
    expect(existsSync(bundles) ? readdirSync(bundles).filter((f) => f.endsWith(".mjs")) : []).toEqual([]);
    expect(readdirSync(join(runnerA.cacheDir, "releases")).filter((f) => f.endsWith(".mjs"))).toHaveLength(2);
  });

  it("redelivers the task of a release process killed with SIGKILL and starts the process again", async () => {
    const hold = join(work, "killed");
    const job = await runHello({ hold });
    await waitUntil("the task to start", async () => existsSync(`${hold}.started`));
    const victim = releaseChildren(runnerA.child.pid!).get("hello@1.1.0")!;
    expect(readFileSync(`${hold}.started`, "utf8")).toBe(`1.1.0 ${victim}\n`);
    process.kill(victim, "SIGKILL");
    // The first attempt cannot see this file: its process is gone.
    await waitUntil("the task to start again", async () => readFileSync(`${hold}.started`, "utf8").split("\n").length > 2);
    writeFileSync(`${hold}.go`, "");
    expect(await displayOf(job)).toBe("ran on 1.1.0");

    const attempts = readFileSync(`${hold}.started`, "utf8").trim().split("\n");
    expect(attempts).toHaveLength(2);
    const restarted = releaseChildren(runnerA.child.pid!).get("hello@1.1.0");
    expect(restarted).toBeDefined();
    expect(restarted).not.toBe(victim);
    expect(attempts[1]).toBe(`1.1.0 ${restarted}`);
    // The runner's fault, not the task's: not counted as a retry.
    expect((await client.jobs().tasks(job))[0]!.retryCount).toBe(0);
    const [status] = await statusOf(clusterA.slug, runnerA.id);
    expect(status).toMatchObject({ name: "hello", version: "1.1.0", state: ReleaseLoadState.LOADED });
    expect(status!.restarts).toBeGreaterThanOrEqual(1);
    expect(runnerA.child.exitCode).toBeNull();
  });

  it("reports a bundle that throws on import FAILED and keeps serving the good one", async () => {
    // `corral release publish` would refuse it (it imports the bundle first); the SDK publishes bytes as they are.
    const broken = Buffer.from(
      'import { Task } from "@corral/sdk";\nthrow new Error("config file missing");\nexport class Broken extends Task { static identifier = { name: "e2e/Broken", version: "v1.0" }; execute() {} }\n',
    );
    await client.releases().publish(broken, { name: "broken", version: "1.0.0", manifest: { identifiers: ["e2e/Broken@v1.0"], nodeEngine: ">=20" } });
    await client.releases().deploy("broken", "1.0.0", { cluster: clusterA.slug });
    await waitUntil("broken@1.0.0 reported failed", async () =>
      (await statusOf(clusterA.slug, runnerA.id)).some((s) => s.name === "broken" && s.state === ReleaseLoadState.FAILED),
    );
    const status = await cli(["release", "status", "--cluster", clusterA.slug]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/release-runner-a .*broken@1\.0\.0 +failed +\d+ +.*config file missing/);
    expect(status.stdout).toMatch(/release-runner-a .*hello@1\.1\.0 +loaded/);

    expect(await identifiersOf(runnerA.id)).toEqual(["e2e/Hello@v1.0"]);
    expect(await displayOf(await runHello())).toBe("ran on 1.1.0");
  });

  it("after undeploy the runner advertises nothing and new tasks stay queued until a release serves them", async () => {
    const undeployed = await cli(["release", "undeploy", "hello", "--cluster", clusterA.slug]);
    expect(undeployed.code, undeployed.stderr).toBe(0);
    await client.releases().undeploy("broken", { cluster: clusterA.slug });
    await waitUntil("runner A to advertise nothing", async () => (await identifiersOf(runnerA.id)).length === 0);
    await waitUntil("its release processes to exit", async () => releaseChildren(runnerA.child.pid!).size === 0);
    await waitUntil("an empty report", async () => (await statusOf(clusterA.slug, runnerA.id)).length === 0);

    const queued = await runHello();
    const [task] = await client.jobs().tasks(queued);
    expect(task!.state).toBe(TaskState.QUEUED);
    // The queued task waited for code to run it: deployed again, it runs.
    await client.releases().deploy("hello", "1.1.0", { cluster: clusterA.slug });
    expect(await displayOf(queued)).toBe("ran on 1.1.0");
    expect(runnerA.child.exitCode).toBeNull();
  });
});
