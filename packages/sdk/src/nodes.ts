// client.nodes(): the runners connected to the suite, as brokers report them.
import { createClient, type Client as RpcClient, type Transport } from "@connectrpc/connect";
import { HostService, NodeService, NodeState, type LogLine, type Node } from "@corral/proto";
import { rpc } from "./errors.js";
import { collectPages } from "./paginate.js";

export type NodeStateName = "online" | "draining" | "offline";

const states: Record<NodeStateName, NodeState> = {
  online: NodeState.ONLINE,
  draining: NodeState.DRAINING,
  offline: NodeState.OFFLINE,
};

export class NodeClient {
  readonly #rpc: RpcClient<typeof NodeService>;
  readonly #hosts: RpcClient<typeof HostService>;

  constructor(transport: Transport) {
    this.#rpc = createClient(NodeService, transport);
    this.#hosts = createClient(HostService, transport);
  }

  /**
   * Nodes of the team, optionally of one cluster and in one state.
   *
   * @example
   * const online = await client.nodes().all({ cluster: "testing-CvufcSxcC9SKfe", state: "online" });
   */
  async all(filter: { cluster?: string; state?: NodeStateName } = {}): Promise<Node[]> {
    return collectPages(async (pageToken) => {
      const res = await rpc(() =>
        this.#rpc.listNodes({
          clusterSlug: filter.cluster ?? "",
          state: filter.state ? states[filter.state] : NodeState.UNSPECIFIED,
          pageSize: 500,
          pageToken,
        }),
      );
      return { items: res.nodes, nextPageToken: res.nextPageToken };
    });
  }

  /** Nodes that are online or draining. */
  async running(cluster = ""): Promise<Node[]> {
    const res = await rpc(() => this.#rpc.listRunningNodes({ clusterSlug: cluster }));
    return res.nodes;
  }

  async find(id: string): Promise<Node> {
    const res = await rpc(() => this.#rpc.getNode({ id }));
    return res.node!;
  }

  /**
   * The last lines a runner launched by `corral agent` wrote to stdout and stderr, oldest first.
   * `dropped` counts lines lost because the kept tail is bounded.
   *
   * @example
   * const { lines } = await client.nodes().logs("gpu-01-r-7Hq2", { tail: 50 });
   * for (const l of lines) console.log(l.stream, l.text);
   */
  async logs(id: string, options: { tail?: number } = {}): Promise<{ lines: LogLine[]; dropped: bigint }> {
    const res = await rpc(() => this.#hosts.getRunnerLogs({ runnerId: id, tail: options.tail ?? 0 }));
    return { lines: res.lines, dropped: res.dropped };
  }
}
