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
  /**
   * Stop the cluster (its runners drain and stop) when `close()` is called on what `create`
   * answers, as Coiled's shutdown_on_close. Only a cluster this call created is stopped: one that
   * `getIfExists` found running belongs to someone else (default false).
   */
  shutdownOnClose?: boolean;
}

/**
 * A cluster as `create` answers it: the Cluster message, plus `close()` that stops it when it was
 * created with `shutdownOnClose` (otherwise a no-op), also as `await using`.
 */
export type ClusterHandle = Cluster & {
  /** True when this call created the cluster; false when `getIfExists` found it. */
  readonly created: boolean;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
};

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
   * With `wait: true` it resolves once the registry has the cluster's runners running on the team's
   * hosts (READY), or fails with ClusterNotReadyError naming the reason after `timeoutMs`.
   *
   * @example
   * const cluster = await client.clusters().create("testing", { spec: { runnerMemory: "16 GiB" } });
   * console.log(cluster.slug); // testing-CvufcSxcC9SKfe
   *
   * @example
   * // Three runners of 2 CPUs and 4 GiB, stopped again by close().
   * await using etl = await client.clusters().create("etl", {
   *   spec: { runnerCount: 3, runnerCpuCores: 2, runnerMemory: "4 GiB" },
   *   wait: true,
   *   timeoutMs: 120_000,
   *   shutdownOnClose: true,
   * });
   */
  async create(name: string, options: CreateClusterOptions = {}): Promise<ClusterHandle> {
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
    const created = res.created;
    const shutdown = options.shutdownOnClose === true && created;
    let closing: Promise<void> | undefined;
    const close = () => (closing ??= shutdown ? this.stop(res.cluster!.slug).then(() => undefined) : Promise.resolve());
    const handle = (cluster: Cluster): ClusterHandle =>
      // Non-enumerable: the handle still prints, compares and serializes as the Cluster message.
      Object.defineProperties(cluster, {
        created: { value: created, enumerable: false },
        close: { value: close, enumerable: false },
        [Symbol.asyncDispose]: { value: close, enumerable: false },
      }) as ClusterHandle;
    if (!options.wait) return handle(res.cluster!);
    try {
      return handle(await this.waitReady(res.cluster!.slug, options));
    } catch (err) {
      // A cluster we would stop on close is not left running when the wait fails.
      if (shutdown) await close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Stops a provisioned cluster: its runners drain and stop, and it stays STOPPED until `start()`
   * or a submitted job wakes it. FailedPreconditionError for a cluster without a runner count.
   *
   * @example
   * await client.clusters().stop("etl-CvufcSxcC9SKfe");
   */
  async stop(slug: string): Promise<Cluster> {
    const res = await rpc(() => this.#rpc.stopCluster({ slug }));
    return res.cluster!;
  }

  /** Brings a stopped cluster back to its spec's runner count; with `wait`, until READY. */
  async start(slug: string, options: WaitReadyOptions & { wait?: boolean } = {}): Promise<Cluster> {
    const res = await rpc(() => this.#rpc.startCluster({ slug }));
    if (!options.wait) return res.cluster!;
    return this.waitReady(slug, options);
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

  /**
   * Deletes a cluster. The default cluster cannot be deleted, nor one with queued or running
   * tasks (FailedPreconditionError) unless `force`, which deletes it all the same: cancel its
   * jobs first (`client.jobs().cancel`), or their remaining tasks wait for a cluster that is gone.
   *
   * @example
   * await client.clusters().delete("testing-CvufcSxcC9SKfe");
   */
  async delete(slug: string, options: { force?: boolean } = {}): Promise<void> {
    await rpc(() => this.#rpc.deleteCluster({ slug, force: options.force ?? false }));
  }
}
