// corral.registry.v1.HardwareService handlers.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  CreateHardwareResponseSchema,
  DeleteHardwareResponseSchema,
  GetHardwareResponseSchema,
  HardwareService,
  ListHardwareResponseSchema,
} from "@corral/proto";
import { requireTeam } from "@corral/server-kit";
import type { HardwareProfiles } from "./hardware.js";
import { hardwareMessage } from "./messages.js";

export function createHardwareService(hardware: HardwareProfiles): ServiceImpl<typeof HardwareService> {
  return {
    async createHardware(req, ctx) {
      const created = await hardware.create(requireTeam(ctx), {
        name: req.name,
        gpuCount: req.gpuCount,
        gpuType: req.gpuType,
        cpuCores: req.cpuCores,
        memoryBytes: req.memoryBytes,
      });
      return create(CreateHardwareResponseSchema, { hardware: hardwareMessage(created) });
    },

    async getHardware(req, ctx) {
      const found = await hardware.get(requireTeam(ctx), req.id);
      return create(GetHardwareResponseSchema, { hardware: hardwareMessage(found) });
    },

    async deleteHardware(req, ctx) {
      await hardware.delete(requireTeam(ctx), req.id);
      return create(DeleteHardwareResponseSchema, {});
    },

    async listHardware(req, ctx) {
      const page = await hardware.list(requireTeam(ctx), req.pageSize, req.pageToken);
      return create(ListHardwareResponseSchema, {
        hardware: page.items.map(hardwareMessage),
        nextPageToken: page.nextPageToken,
      });
    },
  };
}
