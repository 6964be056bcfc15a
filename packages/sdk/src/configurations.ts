// client.configurations(): named cluster specs; "corral/default" always exists.
import { createClient, type Client as RpcClient, type Transport } from "@connectrpc/connect";
import { ConfigurationService, type Configuration } from "@corral/proto";
import { toClusterSpec, type ClusterSpecInput } from "./cluster-spec.js";
import { rpc } from "./errors.js";
import { collectPages } from "./paginate.js";

export class ConfigurationClient {
  readonly #rpc: RpcClient<typeof ConfigurationService>;

  constructor(transport: Transport) {
    this.#rpc = createClient(ConfigurationService, transport);
  }

  /**
   * @example
   * await client.configurations().create("gpu-small", { spec: { runnerGpuCount: 1, runnerMemory: "32 GiB" } });
   */
  async create(name: string, options: { description?: string; spec?: ClusterSpecInput } = {}): Promise<Configuration> {
    const res = await rpc(() =>
      this.#rpc.createConfiguration({ name, description: options.description ?? "", spec: toClusterSpec(options.spec) }),
    );
    return res.configuration!;
  }

  async find(name: string): Promise<Configuration> {
    const res = await rpc(() => this.#rpc.getConfiguration({ name }));
    return res.configuration!;
  }

  async all(): Promise<Configuration[]> {
    return collectPages(async (pageToken) => {
      const res = await rpc(() => this.#rpc.listConfigurations({ pageSize: 500, pageToken }));
      return { items: res.configurations, nextPageToken: res.nextPageToken };
    });
  }

  async delete(name: string): Promise<void> {
    await rpc(() => this.#rpc.deleteConfiguration({ name }));
  }
}
