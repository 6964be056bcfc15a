// client.apiKeys(): the team's API keys. The full key is shown once, when it is created.
import { createClient, type Client as RpcClient, type Transport } from "@connectrpc/connect";
import { ApiKeyService, type ApiKey } from "@corral/proto";
import { rpc } from "./errors.js";
import { collectPages } from "./paginate.js";

export class ApiKeyClient {
  readonly #rpc: RpcClient<typeof ApiKeyService>;

  constructor(transport: Transport) {
    this.#rpc = createClient(ApiKeyService, transport);
  }

  /**
   * @example
   * const { key } = await client.apiKeys().create("ci"); // store it now: it cannot be shown again
   */
  async create(name: string): Promise<{ apiKey: ApiKey; key: string }> {
    const res = await rpc(() => this.#rpc.createApiKey({ name }));
    return { apiKey: res.apiKey!, key: res.key };
  }

  async all(): Promise<ApiKey[]> {
    return collectPages(async (pageToken) => {
      const res = await rpc(() => this.#rpc.listApiKeys({ pageSize: 500, pageToken }));
      return { items: res.apiKeys, nextPageToken: res.nextPageToken };
    });
  }

  async revoke(id: string): Promise<ApiKey> {
    const res = await rpc(() => this.#rpc.revokeApiKey({ id }));
    return res.apiKey!;
  }
}
