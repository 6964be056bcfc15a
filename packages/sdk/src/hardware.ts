// client.hardware(): named hardware profiles that cluster specs refer to.
import { createClient, type Client as RpcClient, type Transport } from "@connectrpc/connect";
import { HardwareService, type HardwareProfile } from "@corral/proto";
import { rpc } from "./errors.js";
import { parseMemory, type MemorySize } from "./memory.js";
import { collectPages } from "./paginate.js";

/** A profile may name GPUs only: CPU and memory are then the spec's own. */
export interface HardwareInput {
  name: string;
  /** Unset (or 0): not part of the profile. */
  cpuCores?: number;
  /** Bytes, or a string such as `"64 GiB"`; unset: not part of the profile. */
  memory?: MemorySize;
  gpuCount?: number;
  gpuType?: string;
}

export class HardwareClient {
  readonly #rpc: RpcClient<typeof HardwareService>;

  constructor(transport: Transport) {
    this.#rpc = createClient(HardwareService, transport);
  }

  /**
   * @example
   * await client.hardware().create({ name: "a100x2", cpuCores: 16, memory: "128 GiB", gpuCount: 2, gpuType: "A100" });
   * await client.hardware().create({ name: "h100x8", gpuCount: 8, gpuType: "H100" }); // GPUs only
   */
  async create(input: HardwareInput): Promise<HardwareProfile> {
    const res = await rpc(() =>
      this.#rpc.createHardware({
        name: input.name,
        cpuCores: input.cpuCores ?? 0,
        memoryBytes: input.memory === undefined ? 0n : parseMemory(input.memory),
        gpuCount: input.gpuCount ?? 0,
        gpuType: input.gpuType ?? "",
      }),
    );
    return res.hardware!;
  }

  async find(id: string): Promise<HardwareProfile> {
    const res = await rpc(() => this.#rpc.getHardware({ id }));
    return res.hardware!;
  }

  /** Throws FAILED_PRECONDITION (ApiError) while a cluster or configuration spec names it. */
  async delete(id: string): Promise<void> {
    await rpc(() => this.#rpc.deleteHardware({ id }));
  }

  async all(): Promise<HardwareProfile[]> {
    return collectPages(async (pageToken) => {
      const res = await rpc(() => this.#rpc.listHardware({ pageSize: 500, pageToken }));
      return { items: res.hardware, nextPageToken: res.nextPageToken };
    });
  }
}
