// client.locations(): where clusters run (a provider and a region).
import { createClient, type Client as RpcClient, type Transport } from "@connectrpc/connect";
import { LocationService, type Location } from "@corral/proto";
import { rpc } from "./errors.js";
import { collectPages } from "./paginate.js";

export interface LocationInput {
  name: string;
  provider: string;
  region?: string;
}

export class LocationClient {
  readonly #rpc: RpcClient<typeof LocationService>;

  constructor(transport: Transport) {
    this.#rpc = createClient(LocationService, transport);
  }

  /**
   * @example
   * const loc = await client.locations().create({ name: "eu", provider: "aws", region: "eu-west-1" });
   */
  async create(input: LocationInput): Promise<Location> {
    const res = await rpc(() =>
      this.#rpc.createLocation({ name: input.name, provider: input.provider, region: input.region ?? "" }),
    );
    return res.location!;
  }

  async update(id: string, changes: Partial<LocationInput>): Promise<Location> {
    const res = await rpc(() => this.#rpc.updateLocation({ id, ...changes }));
    return res.location!;
  }

  /** Throws LocationNotFoundError when there is none. */
  async find(id: string): Promise<Location> {
    const res = await rpc(() => this.#rpc.getLocation({ id }));
    return res.location!;
  }

  /** Throws FAILED_PRECONDITION (ApiError) while a cluster or configuration spec names it. */
  async delete(id: string): Promise<void> {
    await rpc(() => this.#rpc.deleteLocation({ id }));
  }

  async all(): Promise<Location[]> {
    return collectPages(async (pageToken) => {
      const res = await rpc(() => this.#rpc.listLocations({ pageSize: 500, pageToken }));
      return { items: res.locations, nextPageToken: res.nextPageToken };
    });
  }
}
