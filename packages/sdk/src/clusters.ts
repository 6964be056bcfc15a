// client.clusters(): create, list, find, update and delete the team's clusters.
import { createClient, type Client as RpcClient, type Transport } from "@connectrpc/connect";
import { ClusterService, ClusterState, type Cluster } from "@corral/proto";
import { toClusterSpec, type ClusterSpecInput } from "./cluster-spec.js";
import { ClusterNotReadyError, rpc } from "./errors.js";
import { collectPages } from "./paginate.js";
import { sleep } from "./transport.js";

export interface WaitReadyOptions {
  /** Give up after this long with ClusterNotReadyError (default 5 minutes). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called with the cluster each time its state or runner counts change. */
  onProgress?: (cluster: Cluster) => void;
  /** How often the cluster is fetched (default 500 ms). */
  pollIntervalMs?: number;
}

export interface CreateClusterOptions {
  description?: string;
  /** A chosen slug; by default the slugified name plus 14 random characters. */
  slug?: string;
  spec?: ClusterSpecInput;
  /** Location id. */
  location?: string;
  /** A saved configuration to fill the spec from; explicit spec fields win. */
  configuration?: string;
  /** Return the team's cluster of this name when it exists instead of creating another. */
  getIfExists?: boolean;
  /**
   * Wait until the cluster is READY: as many runners running on the team's hosts as its spec asks
   * (`waitReady`). Fails with ClusterNotReadyError, naming the cluster's state reason, after `timeoutMs`.
   */
  wait?: boolean;
  /** With `wait`: how long to wait (default 5 minutes). */
  timeoutMs?: number;
  /** With `wait`: called as runners come up. */
  onProgress?: (cluster: Cluster) => void;
  signal?: AbortSignal;
}

export interface UpdateClusterOptions {
  name?: string;
  description?: string;
  /** Fields set here replace the cluster's; the others keep their value. */
  spec?: ClusterSpecInput;
}

export class ClusterClient {
  readonly #rpc: RpcClient<typeof ClusterService>;

  constructor(transport: Transport) {
    this.#rpc = createClient(ClusterService, transport);
  }

  /**
   * Creates a cluster.
   *
   * @example
   * const cluster = await client.clusters().create("testing", { spec: { runnerMemory: "16 GiB" } });
   * console.log(cluster.slug); // testing-CvufcSxcC9SKfe
   */
  async create(name: string, options: CreateClusterOptions = {}): Promise<Cluster> {
    const res = await rpc(() =>
      this.#rpc.createCluster({
        name,
        description: options.description ?? "",
        slug: options.slug,
        spec: toClusterSpec(options.spec),
        locationId: options.location,
        configuration: options.configuration,
        getIfExists: options.getIfExists ?? false,
      }),
    );
    if (!options.wait) return res.cluster!;
    return this.waitReady(res.cluster!.slug, options);
  }

  /**
   * Waits until a provisioned cluster is READY and answers it. A cluster whose spec sets no runner
   * count is not provisioned (its runners are started by hand): it is answered as it is.
   * Throws ClusterNotReadyError (with the last state and its reason) after the timeout.
   *
   * @example
   * const c = await client.clusters().create("etl", { spec: { runnerCount: 3, runnerCpuCores: 2, runnerMemory: "4 GiB" } });
   * await client.clusters().waitReady(c.slug, { timeoutMs: 120_000 });
   */
  async waitReady(slug: string, options: WaitReadyOptions = {}): Promise<Cluster> {
    const timeoutMs = options.timeoutMs ?? 300_000;
    const deadline = Date.now() + timeoutMs;
    let last = "";
    for (;;) {
      const cluster = await this.find(slug);
      const seen = `${cluster.state}/${cluster.runningRunners}/${cluster.desiredRunners}/${cluster.stateReason}`;
      if (seen !== last) {
        last = seen;
        options.onProgress?.(cluster);
      }
      if (cluster.state === ClusterState.READY || cluster.state === ClusterState.UNSPECIFIED) return cluster;
      const left = deadline - Date.now();
      if (left <= 0) throw new ClusterNotReadyError(cluster, timeoutMs);
      await sleep(Math.min(left, options.pollIntervalMs ?? 500), options.signal);
    }
  }

  /** Every cluster of the team, in creation order. */
  async all(): Promise<Cluster[]> {
    return collectPages(async (pageToken) => {
      const res = await rpc(() => this.#rpc.listClusters({ pageSize: 500, pageToken }));
      return { items: res.clusters, nextPageToken: res.nextPageToken };
    });
  }

  /**
   * Fetches a cluster by slug; without one, the team's default cluster.
   * Throws ClusterNotFoundError when there is none.
   */
  async find(slug = ""): Promise<Cluster> {
    const res = await rpc(() => this.#rpc.getCluster({ slug }));
    return res.cluster!;
  }

  async update(slug: string, options: UpdateClusterOptions): Promise<Cluster> {
    const res = await rpc(() =>
      this.#rpc.updateCluster({
        slug,
        name: options.name,
        description: options.description,
        spec: toClusterSpec(options.spec),
      }),
    );
    return res.cluster!;
  }

  /** Deletes a cluster. The default cluster cannot be deleted (FailedPreconditionError). */
  async delete(slug: string): Promise<void> {
    await rpc(() => this.#rpc.deleteCluster({ slug }));
  }
}
