// client.clusters(): create, list, find, update and delete the team's clusters.
import { createClient, type Client as RpcClient, type Transport } from "@connectrpc/connect";
import { ClusterService, type Cluster } from "@corral/proto";
import { toClusterSpec, type ClusterSpecInput } from "./cluster-spec.js";
import { rpc } from "./errors.js";
import { collectPages } from "./paginate.js";

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
    return res.cluster!;
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
