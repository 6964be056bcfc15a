// The entry point: one Client per server and API key, handing out the per-area clients.
import type { Transport } from "@connectrpc/connect";
import { ApiKeyClient } from "./api-keys.js";
import { AutomationClient } from "./automations.js";
import { ClusterClient } from "./clusters.js";
import { ConfigurationClient } from "./configurations.js";
import { HardwareClient } from "./hardware.js";
import { HostClient } from "./hosts.js";
import { JobClient } from "./jobs.js";
import { LocationClient } from "./locations.js";
import { NodeClient } from "./nodes.js";
import { GatewayRunner, type GatewayRunnerOptions } from "./gateway/gateway-runner.js";
import { ReleaseClient } from "./releases.js";
import { RoutesClient } from "./routes.js";
import { Runner, type RunnerOptions } from "./runner/runner.js";
import { ReleaseRunner, type ReleaseRunnerOptions } from "./runner/release/release-runner.js";
import { RuntimeClient } from "./runtime.js";
import { createTransport, type Protocol, type RetryOptions } from "./transport.js";
import { defaultUrl, describeConnection, resolveConnection, type Connection } from "./credentials.js";

export { defaultUrl };

export interface ClientOptions {
  /**
   * Base URL of the suite (default `CORRAL_URL`, else the nearest `.corral/credentials.json` from
   * the working directory upwards, else `~/.config/corral/credentials.json`, else http://127.0.0.1:7700).
   */
  url?: string;
  /** API key (default `CORRAL_API_KEY`, else the same credentials files as `url`). */
  apiKey?: string;
  /** Wire protocol for API calls (default connect). Runners always use gRPC for their stream. */
  protocol?: Protocol;
  retry?: RetryOptions;
  /**
   * A ready transport instead of an HTTP/2 one (tests: `createRouterTransport`), for API calls and
   * for the runners `runner()` creates (it must carry gRPC streams).
   */
  transport?: Transport;
}

/**
 * A client of a Corral suite.
 *
 * @example
 * const client = new Client({ url: "http://127.0.0.1:7700", apiKey: process.env.CORRAL_API_KEY });
 * const cluster = await client.clusters().create("testing");
 * const job = await client.jobs().submit("hello", new Echo({ message: "hi" }), { cluster: cluster.slug });
 * await client.jobs().wait(job.id);
 */
export class Client {
  readonly url: string;
  readonly apiKey: string | undefined;
  /** Where the URL and key came from (the key by id only): what errors and runners report. */
  readonly connection: Connection;
  readonly transport: Transport;
  /** The transport the caller gave, which runners use too (a built one speaks Connect, not gRPC). */
  readonly #given: Transport | undefined;

  constructor(options: ClientOptions = {}) {
    this.connection = resolveConnection({ url: options.url, apiKey: options.apiKey }, process.env, process.cwd(), {
      url: "the url option",
      apiKey: "the apiKey option",
    });
    this.url = this.connection.url;
    this.apiKey = this.connection.apiKey;
    this.#given = options.transport;
    this.transport =
      options.transport ??
      createTransport({
        baseUrl: this.url,
        apiKey: this.apiKey,
        protocol: options.protocol,
        retry: options.retry,
        connection: describeConnection(this.connection),
      });
  }

  clusters(): ClusterClient {
    return new ClusterClient(this.transport);
  }

  jobs(): JobClient {
    return new JobClient(this.transport);
  }

  /** Automations: cron schedules and new storage objects that submit jobs. */
  automations(): AutomationClient {
    return new AutomationClient(this.transport);
  }

  locations(): LocationClient {
    return new LocationClient(this.transport);
  }

  hardware(): HardwareClient {
    return new HardwareClient(this.transport);
  }

  configurations(): ConfigurationClient {
    return new ConfigurationClient(this.transport);
  }

  nodes(): NodeClient {
    return new NodeClient(this.transport);
  }

  /** Machines running `corral agent`: capacity, state and the runners placed on them. */
  hosts(): HostClient {
    return new HostClient(this.transport);
  }

  /**
   * Releases (bundles of task code), their deployments to clusters and how runners loaded them.
   *
   * @example
   * await client.releases().deploy("render", "1.4.0", { cluster: "render-farm-CvufcSxcC9SKfe" });
   */
  releases(): ReleaseClient {
    return new ReleaseClient(this.transport);
  }

  /**
   * Gateway routes: task identifiers mapped to HTTP endpoints, executed by `gateway()` runners.
   *
   * @example
   * await client.routes().create({ identifier: "echo_job@v1.0", url: "https://echo.example.com/echo/run" });
   */
  routes(): RoutesClient {
    return new RoutesClient(this.transport);
  }

  runtime(): RuntimeClient {
    return new RuntimeClient(this.transport);
  }

  apiKeys(): ApiKeyClient {
    return new ApiKeyClient(this.transport);
  }

  /**
   * A runner serving task classes on a cluster over one gRPC stream.
   *
   * @example
   * const runner = client.runner({ cluster: "testing-CvufcSxcC9SKfe", tasks: [MultiCluster, DummyTask], concurrency: 4 });
   * await runner.runForever({ signal });
   */
  runner(options: Omit<RunnerOptions, "url" | "apiKey">): Runner {
    return new Runner({ ...options, url: this.url, apiKey: this.apiKey, transport: options.transport ?? this.#given });
  }

  /**
   * A release runner: loads the releases deployed to its cluster, each version in its own child
   * process, and follows their deployments without restarting (no task classes of its own).
   *
   * @example
   * const runner = client.releaseRunner({ cluster: "testing-CvufcSxcC9SKfe", concurrency: 8 });
   * await runner.runForever({ signal });
   */
  releaseRunner(options: Omit<ReleaseRunnerOptions, "url" | "apiKey">): ReleaseRunner {
    return new ReleaseRunner({
      ...options,
      url: this.url,
      apiKey: this.apiKey,
      transport: options.transport ?? this.#given,
      apiTransport: options.apiTransport ?? this.transport,
    });
  }

  /**
   * A gateway: a runner on a cluster that executes the team's routes by calling their endpoints,
   * only on the hosts `allow` names.
   *
   * @example
   * const gateway = client.gateway({ cluster: "testing-CvufcSxcC9SKfe", allow: ["echo.example.com"], concurrency: 16 });
   * await gateway.runForever({ signal });
   */
  gateway(options: Omit<GatewayRunnerOptions, "url" | "apiKey">): GatewayRunner {
    return new GatewayRunner({
      ...options,
      url: this.url,
      apiKey: this.apiKey,
      transport: options.transport ?? this.#given,
      apiTransport: options.apiTransport ?? this.transport,
    });
  }
}
