// client.hosts(): the machines running `corral agent` for the team, with their capacity and runners.
import { createClient, type Client as RpcClient, type Transport } from "@connectrpc/connect";
import { HostService, HostState, type Host } from "@corral/proto";
import { hostStates, type HostStateName } from "./cluster-states.js";
import { rpc } from "./errors.js";
import { collectPages } from "./paginate.js";

export class HostClient {
  readonly #rpc: RpcClient<typeof HostService>;

  constructor(transport: Transport) {
    this.#rpc = createClient(HostService, transport);
  }

  /**
   * The team's hosts, optionally in one state.
   *
   * @example
   * const online = await client.hosts().all({ state: "online" });
   * for (const h of online) console.log(h.name, h.capacity?.cpuCores, h.used?.cpuCores);
   */
  async all(filter: { state?: HostStateName } = {}): Promise<Host[]> {
    return collectPages(async (pageToken) => {
      const res = await rpc(() =>
        this.#rpc.listHosts({ state: filter.state ? hostStates[filter.state] : HostState.UNSPECIFIED, pageSize: 500, pageToken }),
      );
      return { items: res.hosts, nextPageToken: res.nextPageToken };
    });
  }

  /** A host by id or name, with the runners placed on it. */
  async find(host: string): Promise<Host> {
    const res = await rpc(() => this.#rpc.getHost({ host }));
    return res.host!;
  }
}
