// client.runtime(): what the server is and allows (versions, limits, lease settings).
import { createClient, type Client as RpcClient, type Transport } from "@connectrpc/connect";
import { RuntimeService, type GetRuntimeConfigResponse } from "@corral/proto";
import { rpc } from "./errors.js";

export class RuntimeClient {
  readonly #rpc: RpcClient<typeof RuntimeService>;

  constructor(transport: Transport) {
    this.#rpc = createClient(RuntimeService, transport);
  }

  async config(): Promise<GetRuntimeConfigResponse> {
    return rpc(() => this.#rpc.getRuntimeConfig({}));
  }

  async hostname(): Promise<string> {
    const res = await rpc(() => this.#rpc.getHostname({}));
    return res.hostname;
  }
}
