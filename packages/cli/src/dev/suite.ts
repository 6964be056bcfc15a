// `corral dev`: the three services in one process on one port, on an embedded or given Postgres
// and a local Redis, with a bootstrap key saved for the CLI and a sample runner.
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import net from "node:net";
import { join, resolve } from "node:path";
import { Client, builtinTasks, type GatewayRunner, type Runner } from "@corral/sdk";
import { createLogger, readServiceConfig, runComponents, type RunningProcess } from "@corral/server-kit";
import { createRegistryComponent } from "@corral/cluster-registry/component";
import { createJobsComponent } from "@corral/job-service/component";
import { createBrokerComponent } from "@corral/task-broker/component";
import { demoTasks, DEMO_TILES_CLUSTER, setDemoOutputDir } from "../demo/mandelbrot.js";
import { DevSetupError, startEmbeddedPostgres, type EmbeddedDatabase } from "./embedded-postgres.js";
import { resolveRedis, type DevRedis } from "./local-redis.js";

export interface DevOptions {
  port: number;
  host: string;
  dataDir: string;
  runner: boolean;
  /**
   * What the sample gateways may call (`corral gateway --allow`): default `*`, any public host.
   * Loopback and private addresses only when named here (`127.0.0.1:8080` for a local endpoint).
   */
  gatewayAllow?: string[];
  say(line: string): void;
}

export interface DevSuite {
  url: string;
  apiKey: string;
  keyCreated: boolean;
  databaseUrl: string;
  redisUrl: string;
  /** Whether the web console is served at / (it is built by `npm install`). */
  consoleServed: boolean;
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = net.createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => done(port));
    });
  });
}

interface Credentials {
  url: string;
  apiKey: string;
}

function readCredentials(file: string): Credentials | undefined {
  try {
    const c = JSON.parse(readFileSync(file, "utf8")) as Partial<Credentials>;
    return typeof c.apiKey === "string" && typeof c.url === "string" ? { url: c.url, apiKey: c.apiKey } : undefined;
  } catch {
    return undefined;
  }
}

export async function startDevSuite(options: DevOptions): Promise<DevSuite> {
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const stops: Array<() => Promise<void>> = [];
  const logger = createLogger("corral-dev", process.env.LOG_LEVEL ?? "warn");
  const stopAll = async () => {
    // A terminal's Ctrl-C reaches the embedded Postgres too, which then ends connections at
    // once; what fails while stopping is expected, not news.
    logger.level = "error";
    for (const stop of stops.reverse()) await stop().catch(() => {});
  };
  try {
    let databaseUrl = process.env.DATABASE_URL;
    if (!databaseUrl) {
      const pg: EmbeddedDatabase = await startEmbeddedPostgres(dataDir, await freePort(), options.say);
      stops.push(() => pg.stop());
      databaseUrl = pg.url;
    }
    const redis: DevRedis = await resolveRedis(dataDir, freePort);
    stops.push(() => redis.stop());

    const self = `http://${options.host === "0.0.0.0" ? "127.0.0.1" : options.host}:${options.port}`;
    const config = readServiceConfig(options.port, {
      ...process.env,
      PORT: String(options.port),
      HOST: options.host,
      DATABASE_URL: databaseUrl,
      REDIS_URL: redis.url,
      CORRAL_REGISTRY_URL: self,
      CORRAL_JOBS_URL: self,
      CORRAL_BROKER_URL: self,
    });
    const running: RunningProcess = await runComponents({
      name: "corral-dev",
      config,
      logger,
      signals: false,
      build: async () => {
        const registry = await createRegistryComponent(config);
        const jobs = await createJobsComponent(config, { logger });
        const broker = createBrokerComponent(config, { logger });
        return [registry, jobs, broker];
      },
    });
    stops.push(() => running.close());

    // A key for the CLI: reuse the saved one while it still works, else bootstrap a new one.
    const registry = running.components.find((c) => c.name === "cluster-registry") as Awaited<
      ReturnType<typeof createRegistryComponent>
    >;
    const credentialsFile = join(dataDir, "credentials.json");
    let apiKey = readCredentials(credentialsFile)?.apiKey;
    let keyCreated = false;
    if (!apiKey || !(await registry.registry.verifier.verify(apiKey))) {
      apiKey = (await registry.registry.bootstrap("default", "corral dev")).key;
      keyCreated = true;
    }
    writeFileSync(credentialsFile, JSON.stringify({ url: self, apiKey }, null, 2) + "\n", { mode: 0o600 });

    if (options.runner) {
      const client = new Client({ url: self, apiKey });
      await client.clusters().create("demo tiles", { slug: DEMO_TILES_CLUSTER, getIfExists: true }).catch(async (err: unknown) => {
        // The slug exists already (created by an earlier run under another name): fine.
        if ((err as { codeName?: string }).codeName !== "already_exists") throw err;
      });
      setDemoOutputDir(join(dataDir, "demo"));
      // RunScript stays registered so a script sent here fails saying why; scripts are off (no
      // allowScripts): these runners run as the developer, often as root in a container.
      const tasks = [...builtinTasks, ...demoTasks];
      const runners: Runner[] = [
        // ctx.cache: the suite's shared job cache (the default), so runners started elsewhere share it.
        client.runner({ tasks, concurrency: 4, logger }),
        client.runner({ cluster: DEMO_TILES_CLUSTER, tasks, concurrency: 4, logger }),
      ];
      // A gateway per sample cluster, so a route created with `corral route create` runs at once.
      const allow = options.gatewayAllow && options.gatewayAllow.length > 0 ? options.gatewayAllow : ["*"];
      const gateways: GatewayRunner[] = ["", DEMO_TILES_CLUSTER].map((cluster) =>
        client.gateway({ cluster, allow, concurrency: 16, refreshMs: 2_000, logger }),
      );
      const ac = new AbortController();
      for (const r of [...runners, ...gateways]) {
        r.runForever({ signal: ac.signal, handleSignals: false }).catch((err: unknown) =>
          options.say(`sample runner stopped: ${(err as Error).message}`),
        );
      }
      stops.push(async () => {
        ac.abort();
        await Promise.all([...runners.map((r) => r.stop()), ...gateways.map((g) => g.stop())]);
      });
    }
    return {
      url: self,
      apiKey,
      keyCreated,
      databaseUrl,
      redisUrl: redis.url,
      consoleServed: config.consoleDir !== undefined && existsSync(join(config.consoleDir, "index.html")),
      close: stopAll,
    };
  } catch (err) {
    await stopAll();
    if ((err as NodeJS.ErrnoException).code === "EADDRINUSE") {
      throw new DevSetupError(`port ${options.port} on ${options.host} is in use (another \`corral dev\`?): stop it, or pass --port`);
    }
    throw err;
  }
}

export { DevSetupError, existsSync };
